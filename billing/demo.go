package billing

import (
	"context"
	"errors"
	"fmt"
)

// DemoOrganisationID is the id of the demo organisation. It is fixed so that, of several replicas
// starting together on an empty database, the database lets exactly one create the demo.
const DemoOrganisationID = "org_demo"

// Demo is a partner to try the sandbox with: an organisation with one site and one API client
// holding every scope, with the client's secret (shown once; only its hash is stored).
type Demo struct {
	Organisation Organisation
	Site         Site
	Client       Client
	Secret       string
}

// CreateDemo gives an empty database a demo partner. It creates nothing and reports false when
// the database has an organisation already, or when another process creates the demo first.
func (s *Service) CreateDemo(ctx context.Context) (Demo, bool, error) {
	n, err := s.store.CountOrganisations(ctx)
	if err != nil {
		return Demo{}, false, fmt.Errorf("count organisations: %w", err)
	}
	if n > 0 {
		return Demo{}, false, nil
	}
	org := Organisation{ID: DemoOrganisationID, Name: "Demo Organisation", CreatedAt: s.now()}
	err = s.store.CreateOrganisation(ctx, org)
	if errors.Is(err, ErrDuplicate) {
		return Demo{}, false, nil
	}
	if err != nil {
		return Demo{}, false, fmt.Errorf("create organisation: %w", err)
	}
	site, err := s.CreateSite(ctx, org.ID, "Demo Site")
	if err != nil {
		return Demo{}, false, err
	}
	client, secret, err := s.CreateClient(ctx, org.ID, AllScopes)
	if err != nil {
		return Demo{}, false, err
	}
	return Demo{Organisation: org, Site: site, Client: client, Secret: secret}, true, nil
}
