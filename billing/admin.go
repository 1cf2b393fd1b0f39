package billing

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"
)

// The operator's side of the Service (pyng admin): listing and showing organisations, sites and
// API clients, and giving a client a new secret. Partners never reach these.

// OperatorStore is what the operator's commands need of the store besides creating: listings
// and the rotation of a client's secret. Store includes it.
type OperatorStore interface {
	// ListOrganisations returns up to p.Limit organisations in the order they were created, those
	// after p's cursor.
	ListOrganisations(ctx context.Context, p OperatorPage) ([]Organisation, error)
	// GetOrganisation returns ErrNotFound when no organisation has the id.
	GetOrganisation(ctx context.Context, id string) (Organisation, error)
	// ListSites and ListClients are ListOrganisations for the sites and clients of
	// p.OrganisationID, or of every organisation when it is empty.
	ListSites(ctx context.Context, p OperatorPage) ([]Site, error)
	ListClients(ctx context.Context, p OperatorPage) ([]Client, error)
	// SetClientSecret replaces the secret hash of the client and returns it; ErrNotFound when no
	// client has the id, ErrStale when it is revoked.
	SetClientSecret(ctx context.Context, id string, secretHash []byte) (Client, error)
}

// OperatorPage selects a page of an operator's listing: up to Limit of those created after the
// one created at AfterCreatedAt with id AfterID (the zero cursor is before the first), of
// OrganisationID if it is set.
type OperatorPage struct {
	OrganisationID string
	AfterCreatedAt time.Time
	AfterID        string
	Limit          int
}

// operatorPageSize is how many rows a listing reads at a time.
const operatorPageSize = 500

// all yields every row the listing list gives, reading it a page at a time; the cursor of the
// next page is the last row's creation time and id (of).
func all[T any](ctx context.Context, p OperatorPage, list func(context.Context, OperatorPage) ([]T, error),
	of func(T) (time.Time, string)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		p.Limit = operatorPageSize
		for {
			page, err := list(ctx, p)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, v := range page {
				if !yield(v, nil) {
					return
				}
			}
			if len(page) < p.Limit {
				return
			}
			p.AfterCreatedAt, p.AfterID = of(page[len(page)-1])
		}
	}
}

// failed is a listing of one error.
func failed[T any](err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		yield(zero, err)
	}
}

// Organisations yields every organisation, in the order they were created (operators only).
func (s *Service) Organisations(ctx context.Context) iter.Seq2[Organisation, error] {
	return all(ctx, OperatorPage{}, s.store.ListOrganisations, func(o Organisation) (time.Time, string) { return o.CreatedAt, o.ID })
}

// Organisation returns the organisation with the id (operators only).
func (s *Service) Organisation(ctx context.Context, id string) (Organisation, error) {
	o, err := s.store.GetOrganisation(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Organisation{}, unknownOrganisation()
	}
	if err != nil {
		return Organisation{}, fmt.Errorf("get organisation: %w", err)
	}
	return o, nil
}

// Sites yields the sites of the organisation, or of every organisation when organisationID is
// empty, in the order they were created (operators only). An organisation that does not exist is
// an error, not an empty listing.
func (s *Service) Sites(ctx context.Context, organisationID string) iter.Seq2[Site, error] {
	if organisationID != "" {
		if _, err := s.Organisation(ctx, organisationID); err != nil {
			return failed[Site](err)
		}
	}
	return all(ctx, OperatorPage{OrganisationID: organisationID}, s.store.ListSites, func(v Site) (time.Time, string) { return v.CreatedAt, v.ID })
}

// SiteByID returns the site with the id, whichever organisation's it is (operators only; a
// partner's call goes through Site, which checks the organisation).
func (s *Service) SiteByID(ctx context.Context, id string) (Site, error) {
	site, err := Site{}, error(ErrNotFound) // no id holds a control character
	if PlainText(id) {
		site, err = s.store.GetSite(ctx, id)
	}
	if errors.Is(err, ErrNotFound) {
		return Site{}, Errorf(CodeInvalidField, "siteId", "No site with this id exists.")
	}
	if err != nil {
		return Site{}, fmt.Errorf("get site: %w", err)
	}
	return site, nil
}

// Clients yields the API clients of the organisation, or of every organisation when
// organisationID is empty, revoked ones included, in the order they were created (operators
// only). An organisation that does not exist is an error, not an empty listing.
func (s *Service) Clients(ctx context.Context, organisationID string) iter.Seq2[Client, error] {
	if organisationID != "" {
		if _, err := s.Organisation(ctx, organisationID); err != nil {
			return failed[Client](err)
		}
	}
	return all(ctx, OperatorPage{OrganisationID: organisationID}, s.store.ListClients, func(c Client) (time.Time, string) { return c.CreatedAt, c.ID })
}

// ClientByID returns the API client with the id, revoked or not (operators only).
func (s *Service) ClientByID(ctx context.Context, id string) (Client, error) {
	c, err := Client{}, error(ErrNotFound) // no id holds a control character
	if PlainText(id) {
		c, err = s.store.GetClient(ctx, id)
	}
	if errors.Is(err, ErrNotFound) {
		return Client{}, unknownClient()
	}
	if err != nil {
		return Client{}, fmt.Errorf("get client: %w", err)
	}
	return c, nil
}

// RotateClientSecret gives the client a new secret, returned once (only its hash is stored); the
// old secret no longer obtains tokens from that moment (operators only). Access tokens already
// issued stay valid until they expire; RevokeClient ends those too. A revoked client keeps its
// revocation and gets no new secret.
func (s *Service) RotateClientSecret(ctx context.Context, clientID string) (Client, string, error) {
	secret := newClientSecret()
	c, err := s.store.SetClientSecret(ctx, clientID, HashSecret(secret))
	switch {
	case errors.Is(err, ErrNotFound):
		return Client{}, "", unknownClient()
	case errors.Is(err, ErrStale):
		return Client{}, "", Errorf(CodeInvalidField, "clientId", "This client is revoked; create a new client instead.")
	case err != nil:
		return Client{}, "", fmt.Errorf("set client secret: %w", err)
	}
	return c, secret, nil
}

// newClientSecret is a new client secret, as CreateClient makes them.
func newClientSecret() string { return "sec_" + RandomToken(32) }

// FindDemo returns the demo partner a sandbox was given on its first start (CreateDemo), if its
// organisation exists: the organisation, its first site and its first client that is not revoked
// (zero when it has none). Demo.Secret is empty: it was shown once, when the demo was created.
func (s *Service) FindDemo(ctx context.Context) (Demo, bool, error) {
	org, err := s.store.GetOrganisation(ctx, DemoOrganisationID)
	if errors.Is(err, ErrNotFound) {
		return Demo{}, false, nil
	}
	if err != nil {
		return Demo{}, false, fmt.Errorf("get demo organisation: %w", err)
	}
	d := Demo{Organisation: org}
	for site, err := range s.Sites(ctx, org.ID) {
		if err != nil {
			return Demo{}, false, err
		}
		d.Site = site
		break
	}
	for c, err := range s.Clients(ctx, org.ID) {
		if err != nil {
			return Demo{}, false, err
		}
		if !c.Revoked() {
			d.Client = c
			break
		}
	}
	return d, true, nil
}
