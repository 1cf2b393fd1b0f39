package httpapi

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/pyng/receivables/billing"
)

// invitationJSON is the answer to an invitation.
type invitationJSON struct {
	CustomerReference string            `json:"customerReference"`
	SignupURL         string            `json:"signupUrl"`
	ExpiresAt         int64             `json:"expiresAt"`
	State             billing.LinkState `json:"state"`
}

// linkJSON is a customer link as the partner sees it, with the signup link while it is invited.
type linkJSON struct {
	billing.LinkView
	SignupURL string `json:"signupUrl,omitempty"`
}

// signupURL is the link the partner delivers to its customer.
func (a *server) signupURL(l billing.Link) (string, error) {
	t, err := a.cfg.Tokens.Signup(l)
	if err != nil {
		return "", err
	}
	return a.cfg.PublicURL + "/signup?token=" + t, nil
}

// linkOf presents l as it stands now: an invitation past its expiry reads expired at once.
func (a *server) linkOf(l billing.Link) (linkJSON, error) {
	j := linkJSON{LinkView: billing.ViewLink(l, a.cfg.Service.Now())}
	if j.State == billing.LinkInvited {
		var err error
		if j.SignupURL, err = a.signupURL(l); err != nil {
			return linkJSON{}, err
		}
	}
	return j, nil
}

// linkResult answers with one link, or passes err on.
func (a *server) linkResult(l billing.Link, err error) (result, error) {
	if err != nil {
		return result{}, err
	}
	j, err := a.linkOf(l)
	if err != nil {
		return result{}, err
	}
	return result{status: http.StatusOK, body: dataEnvelope{Data: j}}, nil
}

type invitationRequest struct {
	CustomerReference referenceField `json:"customerReference"`
	// Metadata is the partner's own keys and values (billing.ValidateMetadata).
	Metadata metadataField `json:"metadata"`
}

// referenceField is an invitation's customerReference: a string. Any other JSON value (a number,
// an object) is read as no reference, which the service refuses with the specification's own
// error for the field (customer-link:invalid-reference), as it does a missing, null or empty one.
type referenceField string

func (f *referenceField) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	if d.PeekKind() != '"' {
		return d.SkipValue()
	}
	return json.UnmarshalDecode(d, (*string)(f))
}

// metadataField is the metadata of an invitation: an object of strings, or absent. Unlike a
// plain map it tells a null, which the document does not allow, from an absent member.
type metadataField struct {
	m    map[string]string
	null bool
}

func (f *metadataField) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	if d.PeekKind() == 'n' {
		f.null = true
		_, err := d.ReadToken()
		return err
	}
	var m map[string]metadataValue
	if err := json.UnmarshalDecode(d, &m); err != nil {
		return err
	}
	if m != nil {
		f.m = make(map[string]string, len(m))
		for k, v := range m {
			f.m[k] = string(v)
		}
	}
	return nil
}

// metadataValue is one value of the metadata: a string. A null, which the document does not
// allow either, is refused as a value of another type (metadata.KEY must be a string), not
// stored as an empty string.
type metadataValue string

// errNullMetadataValue is the error of a null metadata value; the decoder reports it with the
// value's place (metadata.KEY) and type (a string).
var errNullMetadataValue = errors.New("a metadata value must be a string, not null")

func (v *metadataValue) UnmarshalJSONFrom(d *jsontext.Decoder) error {
	if d.PeekKind() == 'n' {
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		return errNullMetadataValue
	}
	return json.UnmarshalDecode(d, (*string)(v))
}

func (f metadataField) MarshalJSONTo(e *jsontext.Encoder) error {
	return json.MarshalEncode(e, f.m)
}

// invite is POST /billing/sites/{siteId}/customers/invitations.
func (a *server) invite(w http.ResponseWriter, r *http.Request) (atSite, error) {
	var req invitationRequest
	if err := decodeJSON(w, r, &req, bodyRequired); err != nil {
		return nil, err
	}
	if req.Metadata.null {
		return nil, billing.Errorf(billing.CodeInvalidField, "metadata", "metadata must be an object, or left out.")
	}
	return func(site billing.Site) (result, error) {
		l, err := a.cfg.Service.InviteWithMetadata(r.Context(), site, string(req.CustomerReference), req.Metadata.m)
		if err != nil {
			return result{}, err
		}
		url, err := a.signupURL(l)
		if err != nil {
			return result{}, err
		}
		return result{status: http.StatusCreated, body: dataEnvelope{Data: invitationJSON{
			CustomerReference: l.CustomerReference,
			SignupURL:         url,
			ExpiresAt:         billing.Millis(l.ExpiresAt),
			State:             l.StateAt(a.cfg.Service.Now()),
		}}}, nil
	}, nil
}

// defaultPageSize is the page size of a list without ?limit=.
const defaultPageSize = 50

// listLinks is GET /billing/sites/{siteId}/customers: the current link of each customer, by
// customerReference in byte order, paged by an opaque cursor.
func (a *server) listLinks(w http.ResponseWriter, r *http.Request) (atSite, error) {
	return func(site billing.Site) (result, error) {
		f, err := linkFilterOf(r.URL.Query())
		if err != nil {
			return result{}, err
		}
		links, next, err := a.cfg.Service.Links(r.Context(), site, f)
		if err != nil {
			return result{}, err
		}
		data := make([]linkJSON, 0, len(links))
		for _, l := range links {
			j, err := a.linkOf(l)
			if err != nil {
				return result{}, err
			}
			data = append(data, j)
		}
		body := dataEnvelope{Data: data}
		if next != "" {
			body.NextCursor = encodeCursor(next)
		}
		return result{status: http.StatusOK, body: body}, nil
	}, nil
}

// linkFilterOf reads the query of a list of links: ?cursor=, ?limit=, ?state=, checked in that
// order.
func linkFilterOf(query url.Values) (billing.LinkFilter, error) {
	var f billing.LinkFilter
	if query.Has("cursor") {
		after, ok := decodeCursor(query.Get("cursor"))
		if !ok {
			return billing.LinkFilter{}, invalidCursor()
		}
		f.After = after
	}
	var err error
	if f.Limit, err = pageSize(query); err != nil {
		return billing.LinkFilter{}, err
	}
	if query.Has("state") {
		if f.State, err = billing.ParseLinkState(query.Get("state")); err != nil {
			return billing.LinkFilter{}, err
		}
	}
	return f, nil
}

// pageSize is the ?limit= of a list: defaultPageSize when absent.
func pageSize(query url.Values) (int, error) {
	if !query.Has("limit") {
		return defaultPageSize, nil
	}
	return billing.ParsePageSize(query.Get("limit"))
}

// invalidCursor is the answer to a ?cursor= that is not one this server gave.
func invalidCursor() error {
	return billing.Errorf(billing.CodeInvalidField, "cursor",
		"cursor is not valid: pass the nextCursor of the previous page as it was given.")
}

// The cursor is the customerReference of the last link of the page, base64url-encoded. It is
// opaque to partners so that it may change.
func encodeCursor(after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(after))
}

// decodeCursor reads a cursor as encodeCursor writes it, and no other way: base64 decoding also
// takes other trailing bits and line breaks, which would make other cursors of the same page.
func decodeCursor(cursor string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || !billing.ValidReference(string(b)) || encodeCursor(string(b)) != cursor {
		return "", false
	}
	return string(b), true
}

// getLink is GET /billing/sites/{siteId}/customers/{customerReference}.
func (a *server) getLink(w http.ResponseWriter, r *http.Request) (atSite, error) {
	return func(site billing.Site) (result, error) {
		return a.linkResult(a.cfg.Service.Link(r.Context(), site, r.PathValue("customerReference")))
	}, nil
}

// revokeLink is POST /billing/sites/{siteId}/customers/{customerReference}/revoke.
func (a *server) revokeLink(w http.ResponseWriter, r *http.Request) (atSite, error) {
	return a.linkAction(w, r, a.cfg.Service.RevokeByPartner)
}

// simulateSignup is the sandbox's POST .../sandbox/customers/{customerReference}/signup.
func (a *server) simulateSignup(w http.ResponseWriter, r *http.Request) (atSite, error) {
	return a.linkAction(w, r, a.cfg.Service.SimulateSignup)
}

// simulateCustomerRevocation is the sandbox's POST .../customer-revocation.
func (a *server) simulateCustomerRevocation(w http.ResponseWriter, r *http.Request) (atSite, error) {
	return a.linkAction(w, r, a.cfg.Service.SimulateCustomerRevocation)
}

// linkActionFunc is a Service method that acts on the current link of a customerReference.
type linkActionFunc = func(ctx context.Context, site billing.Site, customerReference string) (billing.Link, error)

// linkAction runs an action that takes no parameters: the body is empty or {}.
func (a *server) linkAction(w http.ResponseWriter, r *http.Request, act linkActionFunc) (atSite, error) {
	var empty struct{}
	if err := decodeJSON(w, r, &empty, bodyOptional); err != nil {
		return nil, err
	}
	return func(site billing.Site) (result, error) {
		return a.linkResult(act(r.Context(), site, r.PathValue("customerReference")))
	}, nil
}
