package billing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/pyng/receivables/ddr"
	"github.com/pyng/receivables/rail"
)

// DefaultInvitationTTL is how long a signup link stays valid unless configured otherwise.
const DefaultInvitationTTL = 7 * 24 * time.Hour

// Service holds the rules of the domain. Methods that act on a site take the Site that Service.Site
// resolved for the caller, which checks that it belongs to the caller's organisation.
type Service struct {
	store         Store
	batches       BatchStore
	events        EventStore
	rails         map[string]rail.Rail
	clock         Clock
	invitationTTL time.Duration
	// sandbox is Config.Sandbox.
	sandbox bool
	// privateWebhooks is Config.PrivateWebhooks.
	privateWebhooks bool
	// debitUserID is Config.DebitUserID.
	debitUserID func(ctx context.Context, siteID string) (string, error)
	// executeChunk is Config.ExecuteChunk.
	executeChunk int

	// sites caches the sites read, by id: a site's organisation and name never change, nor does it
	// go away, once created, and every partner call checks its site, so this saves a database
	// round trip per request. Its rail, debit user and time zone may change, from another process
	// too: where they matter (a batch's rail, the customer's pages), they are read afresh.
	sites sync.Map
}

// Config is every dependency of a Service; none may be left out.
type Config struct {
	Store   Store
	Batches BatchStore
	Events  EventStore
	// Rails are the payment rails by name; each site's debits go to the rail it names (Site.Rail).
	Rails map[string]rail.Rail
	Clock Clock
	// InvitationTTL is how long a signup link stays valid (DefaultInvitationTTL unless configured).
	InvitationTTL time.Duration
	// Sandbox says the server is a sandbox: a site on the sandbox rail takes batches and
	// invitations. Outside the sandbox, a site still on the sandbox rail, which moves no money,
	// is refused them (site:not-collecting), so that no partner of a real server is told that
	// debits succeeded that nobody collected, and no customer agrees to a Direct Debit Request
	// that names no user ID (TakesSignups).
	Sandbox bool
	// PrivateWebhooks lets webhook URLs be http and name loopback or private hosts, where a
	// partner's receiver runs on its own machine: a sandbox on that machine, never a server
	// others reach, whose network is not theirs to probe.
	PrivateWebhooks bool
	// DebitUserID gives a site's BECS user ID ("" when it has none), for the terms of its Direct
	// Debit Request (Terms); nil when no rail has user IDs, and required with the BECS rail.
	DebitUserID func(ctx context.Context, siteID string) (string, error)
	// ExecuteChunk is how many of a batch's pending rows one step of its execution submits and
	// records; zero (or less) is all of them in one step. The step's transactions hold the
	// database for a chunk's rows, not the batch's: on an engine with one connection (SQLite), a
	// batch submitted meanwhile then waits for one chunk at most.
	ExecuteChunk int
}

// NewService returns the service over cfg. It panics when a dependency is missing: that is a
// mistake in the program's wiring, not a condition a caller could handle, and it shows on the
// first start of any test or server.
func NewService(cfg Config) *Service {
	var missing []string
	if cfg.Store == nil {
		missing = append(missing, "Store")
	}
	if cfg.Batches == nil {
		missing = append(missing, "Batches")
	}
	if cfg.Events == nil {
		missing = append(missing, "Events")
	}
	if len(cfg.Rails) == 0 {
		missing = append(missing, "Rails")
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Rails)) {
		if cfg.Rails[name] == nil {
			missing = append(missing, fmt.Sprintf("Rails[%q]", name))
		}
	}
	if cfg.Clock == nil {
		missing = append(missing, "Clock")
	}
	if cfg.InvitationTTL <= 0 {
		missing = append(missing, "InvitationTTL")
	}
	// Without it, the BECS rail's sites would show and check Direct Debit Requests that name no
	// user ID, and debit under one their customers never saw.
	if _, ok := cfg.Rails[rail.BECS]; ok && cfg.DebitUserID == nil {
		missing = append(missing, "DebitUserID (the BECS rail debits under a user ID)")
	}
	if len(missing) > 0 {
		panic("billing: NewService: missing " + strings.Join(missing, ", "))
	}
	return &Service{
		store:         cfg.Store,
		batches:       cfg.Batches,
		events:        cfg.Events,
		rails:         maps.Clone(cfg.Rails),
		clock:         cfg.Clock,
		invitationTTL: cfg.InvitationTTL,

		sandbox:         cfg.Sandbox,
		privateWebhooks: cfg.PrivateWebhooks,
		debitUserID:     cfg.DebitUserID,
		executeChunk:    cfg.ExecuteChunk,
	}
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Millisecond) }

// Now is the service's current time, for callers that present state at a moment (StateAt).
func (s *Service) Now() time.Time { return s.now() }

// Site returns the site if it belongs to the caller's organisation. It is the one check of a
// site's ownership: the transport calls it once per request and hands the site to the method.
//
// Only the caller's own site is answered from the cache. Another organisation's site is read
// from the store every time, as a missing site is, so that both cost one read: were the one
// cached and the other not, the time of the same 404 would tell a prober which site ids exist.
func (s *Service) Site(ctx context.Context, caller Caller, siteID string) (Site, error) {
	if !PlainText(siteID) {
		return Site{}, siteNotFound()
	}
	if cached, ok := s.sites.Load(siteID); ok && cached.(Site).OrganisationID == caller.OrganisationID {
		return cached.(Site), nil
	}
	site, err := s.store.GetSite(ctx, siteID)
	if errors.Is(err, ErrNotFound) || (err == nil && site.OrganisationID != caller.OrganisationID) {
		return Site{}, siteNotFound()
	}
	if err != nil {
		return Site{}, fmt.Errorf("get site: %w", err)
	}
	s.sites.Store(siteID, site)
	return site, nil
}

// Invite mints an invitation: a new invited link for the customerReference, unless the reference
// already has an active link.
func (s *Service) Invite(ctx context.Context, site Site, customerReference string) (Link, error) {
	return s.InviteWithMetadata(ctx, site, customerReference, nil)
}

// InviteWithMetadata is Invite with the partner's metadata (see ValidateMetadata), kept with the
// link. Every problem of the reference and the metadata is reported at once; nothing is stored.
func (s *Service) InviteWithMetadata(ctx context.Context, site Site, customerReference string, metadata map[string]string) (Link, error) {
	var errs Errors
	if !ValidReference(customerReference) {
		errs = append(errs, invalidCustomerReference())
	}
	metadata, err := ValidateMetadata(metadata)
	errs = append(errs, AsErrors(err)...)
	switch {
	case len(errs) == 1:
		return Link{}, errs[0]
	case len(errs) > 1:
		return Link{}, errs
	}
	// Outside the sandbox, a site on the sandbox rail takes no invitation, as it takes no batch:
	// its customers would agree to a Direct Debit Request that names no user ID, and have to sign
	// up again once it is on a rail that moves money.
	if _, err := s.checkCollecting(ctx, site); err != nil {
		return Link{}, err
	}
	now := s.now()
	l := Link{
		ID:                NewID("lnk"),
		SiteID:            site.ID,
		CustomerReference: customerReference,
		StoredState:       LinkInvited,
		CreatedAt:         now,
		ExpiresAt:         now.Add(s.invitationTTL),
		Metadata:          metadata,
	}
	err = s.store.CreateLink(ctx, l)
	if errors.Is(err, ErrDuplicate) {
		return Link{}, Errorf(CodeLinkAlreadyExists, "customerReference",
			"An active invitation or link already exists for this customerReference.")
	}
	if err != nil {
		return Link{}, fmt.Errorf("create link: %w", err)
	}
	return l, nil
}

// Link returns the current link of a customerReference of the site.
func (s *Service) Link(ctx context.Context, site Site, customerReference string) (Link, error) {
	return s.currentLink(ctx, site.ID, customerReference)
}

func (s *Service) currentLink(ctx context.Context, siteID, customerReference string) (Link, error) {
	if !ValidReference(customerReference) {
		return Link{}, linkNotFound()
	}
	l, err := s.store.GetCurrentLink(ctx, siteID, customerReference)
	if errors.Is(err, ErrNotFound) {
		return Link{}, linkNotFound()
	}
	if err != nil {
		return Link{}, fmt.Errorf("get current link: %w", err)
	}
	return l, nil
}

// MaxPageSize bounds LinkFilter.Limit (and every other list).
const MaxPageSize = 100

func validPageSize(n int) bool { return n >= 1 && n <= MaxPageSize }

// ParsePageSize reads the size of a page of a list as a partner wrote it: an integer from 1 to
// MaxPageSize.
func ParsePageSize(s string) (int, error) {
	n, err := strconv.Atoi(s)
	// Decimal digits only: Atoi also takes a sign, and "+5" is no integer the document's
	// schema describes.
	if err != nil || strings.Trim(s, "0123456789") != "" || !validPageSize(n) {
		return 0, invalidPageSize()
	}
	return n, nil
}

// Links lists the current links of the site. next is the After of the following page, empty on
// the last page.
func (s *Service) Links(ctx context.Context, site Site, f LinkFilter) (links []Link, next string, err error) {
	if !validPageSize(f.Limit) {
		return nil, "", invalidPageSize()
	}
	if f.State != "" && !f.State.Valid() {
		return nil, "", invalidLinkState()
	}
	page := f
	page.Limit = f.Limit + 1 // one more tells whether another page follows
	links, err = s.store.ListLinks(ctx, site.ID, page, s.now())
	if err != nil {
		return nil, "", fmt.Errorf("list links: %w", err)
	}
	if len(links) > f.Limit {
		links = links[:f.Limit]
		next = links[len(links)-1].CustomerReference
	}
	return links, next, nil
}

// RevokeByPartner revokes an invited or linked link at the partner's request.
func (s *Service) RevokeByPartner(ctx context.Context, site Site, customerReference string) (Link, error) {
	l, err := s.Link(ctx, site, customerReference)
	if err != nil {
		return Link{}, err
	}
	return s.revoke(ctx, l, RevokedByPartner)
}

func (s *Service) revoke(ctx context.Context, l Link, by RevokedBy) (Link, error) {
	now := s.now()
	if state := l.StateAt(now); state != LinkInvited && state != LinkLinked {
		return Link{}, Errorf(CodeLinkInvalidState, "customerReference",
			fmt.Sprintf("Only an invited or linked customer link can be revoked; this one is %s.", state))
	}
	if err := s.withdrawUnsent(ctx, l); err != nil {
		return Link{}, err
	}
	revoked, err := s.store.RevokeLink(ctx, l.ID, by, now)
	if errors.Is(err, ErrStale) {
		return Link{}, Errorf(CodeLinkInvalidState, "customerReference",
			"The customer link changed state while it was being revoked; read it again.")
	}
	if err != nil {
		return Link{}, fmt.Errorf("revoke link: %w", err)
	}
	s.withdrawRevoked(ctx, []Link{revoked})
	return revoked, nil
}

// SandboxCustomer is who signs up when a partner uses the sandbox signup simulator.
var SandboxCustomer = Customer{Name: "Sandbox Customer", Email: "customer@example.com", BSB: "062000", AccountNumber: "12345678",
	AccountName: "Sandbox Customer", Type: CustomerIndividual}

// SimulateSignup completes the active invitation as if the customer had signed up (sandbox only;
// the transport decides whether the sandbox is on).
func (s *Service) SimulateSignup(ctx context.Context, site Site, customerReference string) (Link, error) {
	noInvitation := Errorf(CodeLinkNoActiveInvitation, "customerReference",
		"There is no active invitation for this customerReference.")
	l, err := s.currentLink(ctx, site.ID, customerReference)
	if AsErrors(err) != nil {
		return Link{}, noInvitation
	}
	if err != nil {
		return Link{}, err
	}
	terms, err := s.currentTerms(ctx, site.ID)
	if err != nil {
		return Link{}, err
	}
	linked, err := s.linkCustomer(ctx, l, SandboxCustomer, terms, "")
	if AsErrors(err) != nil {
		return Link{}, noInvitation
	}
	return linked, err
}

// SimulateCustomerRevocation revokes a linked link as if the customer had done it in the app.
func (s *Service) SimulateCustomerRevocation(ctx context.Context, site Site, customerReference string) (Link, error) {
	l, err := s.Link(ctx, site, customerReference)
	if err != nil {
		return Link{}, err
	}
	return s.RevokeByCustomer(ctx, l.ID)
}

// LinkByID returns the link with the id, and its site: the customer's pages look up the link a
// signup or an agreement token names. An id no link has gives CodeLinkNotFound.
func (s *Service) LinkByID(ctx context.Context, linkID string) (Link, Site, error) {
	if !PlainText(linkID) {
		return Link{}, Site{}, linkIDNotFound()
	}
	l, err := s.store.GetLink(ctx, linkID)
	if errors.Is(err, ErrNotFound) {
		return Link{}, Site{}, linkIDNotFound()
	}
	if err != nil {
		return Link{}, Site{}, fmt.Errorf("get link: %w", err)
	}
	// Read fresh, not through the cache: the customer's pages show the site's debit user (whom
	// the Direct Debit Request of the signup form authorises) and its time zone, which an operator
	// changes from another process (pyng admin site update), whose cache this one never hears of.
	site, err := s.store.GetSite(ctx, l.SiteID)
	if err != nil {
		return Link{}, Site{}, fmt.Errorf("get site: %w", err)
	}
	s.sites.Store(site.ID, site)
	return l, site, nil
}

// CheckSignup checks what a customer typed at signup, before anything is stored: every invalid
// field at once (targets name, email, accountName, customerType, businessName, abn, bsb,
// accountNumber, consent, authorised), and, when the operator has imported the BSB directory, a
// BSB it does not list. It returns the details as they would be kept, and the BSB's branch when
// the directory lists it (zero otherwise).
func (s *Service) CheckSignup(ctx context.Context, c Customer, d Declarations) (Customer, Branch, error) {
	c, err := ValidateCustomer(c, d)
	errs := AsErrors(err)
	if err != nil && errs == nil {
		return Customer{}, Branch{}, err
	}
	var branch Branch
	if !slices.ContainsFunc(errs, func(e *Error) bool { return e.Target == "bsb" }) {
		b, known, loaded, err := s.Branch(ctx, c.BSB)
		if err != nil {
			return Customer{}, Branch{}, err
		}
		switch {
		case loaded && !known:
			errs = append(errs, Errorf(CodeCustomerInvalidField, "bsb",
				"We can't find this BSB in the list of Australian bank branches. Check it on your statement or with your bank."))
		case known && !b.TakesDirectDebits():
			// Every debit to it would come back from the bank: the customer is told now.
			errs = append(errs, Errorf(CodeCustomerInvalidField, "bsb",
				"This branch doesn't accept direct debits. Check the BSB on your statement, or use an account at another branch."))
		}
		branch = b
	}
	return c, branch, errs.Err()
}

// CompleteSignup links the customer who signed up with the invitation l, as LinkByID read it,
// after checking the details as CheckSignup does, under the site's current terms (Terms), which
// the link keeps; browser is a secret of the browser that confirmed the signup (see
// SignedUpFrom). Terms changed since the customer was shown those of d.Terms (an operator
// updated the debit user meanwhile) are refused at "consent": the customer reads them again. A
// link that is no longer invited, or has moved on since it was read, gives CodeLinkInvalidState.
func (s *Service) CompleteSignup(ctx context.Context, l Link, c Customer, d Declarations, browser string) (Link, error) {
	c, _, err := s.CheckSignup(ctx, c, d)
	if err != nil {
		return Link{}, err
	}
	terms, err := s.ConsentedTerms(ctx, l.SiteID, d)
	if err != nil {
		return Link{}, err
	}
	return s.linkCustomer(ctx, l, c, terms, browser)
}

// ConsentedTerms are the site's terms as they stand, which the customer's declarations d must
// name (the version the form showed them): terms changed since (an operator updated the debit
// user, or a release the wording) are refused at "consent", and the customer reads them again.
// A site that takes no signups (TakesSignups) is refused first.
func (s *Service) ConsentedTerms(ctx context.Context, siteID string, d Declarations) (ddr.Terms, error) {
	site, err := s.store.GetSite(ctx, siteID)
	if err != nil {
		return ddr.Terms{}, fmt.Errorf("get site: %w", err)
	}
	if err := s.TakesSignups(site); err != nil {
		return ddr.Terms{}, err
	}
	terms, err := s.Terms(ctx, site)
	if err != nil {
		return ddr.Terms{}, err
	}
	if d.Terms != terms.Version() {
		return ddr.Terms{}, Errorf(CodeCustomerInvalidField, "consent",
			"The Direct Debit Request changed since this page was shown. Read it again, and tick the box if you agree.")
	}
	return terms, nil
}

// Terms are the terms of the site's Direct Debit Request Service Agreement as they stand: its
// debit user as an operator set it, with its BECS user ID when it has one. site must have been
// read fresh (LinkByID, SiteByID): an operator changes them from another process.
func (s *Service) Terms(ctx context.Context, site Site) (ddr.Terms, error) {
	t := ddr.Terms{Wording: ddr.CurrentWording, Site: site.Name, DebitUser: site.DebitUser.Name, ABN: site.DebitUser.ABN, Phone: site.DebitUser.Phone,
		Email: site.DebitUser.Email, Address: site.DebitUser.Address}
	id, err := s.debitUser(ctx, site.ID)
	if err != nil {
		return ddr.Terms{}, err
	}
	t.UserID = id
	return t, nil
}

// debitUser is the site's debit user ID as it stands ("" when it has none, or no rail has any).
func (s *Service) debitUser(ctx context.Context, siteID string) (string, error) {
	if s.debitUserID == nil {
		return "", nil
	}
	id, err := s.debitUserID(ctx, siteID)
	if err != nil {
		return "", fmt.Errorf("the debit user ID of site %s: %w", siteID, err)
	}
	return id, nil
}

// authorises reports whether agreed, the terms a customer agreed to at signup, authorise debits
// under the debit user ID userID: only if they name it. Terms unknown (zero: the customer linked
// before they were kept) authorise none.
func authorises(agreed ddr.Terms, userID string) bool {
	return agreed != (ddr.Terms{}) && agreed.UserID == userID
}

// TakesSignups refuses, outside the sandbox, a signup at a site on the sandbox rail, as its
// invitations are refused (checkCollecting): the customer would agree to a Direct Debit Request
// that names no user ID, and have to sign up again once the site is on a rail. It holds for a
// signup link minted before the site was taken off its rail. site must have been read fresh
// (LinkByID).
func (s *Service) TakesSignups(site Site) error {
	if s.collects(site) {
		return nil
	}
	return Errorf(CodeSiteNotCollecting, "siteId", "This site does not collect debits yet, so it takes no signup: nothing was stored.")
}

// currentTerms are Terms of the site read afresh.
func (s *Service) currentTerms(ctx context.Context, siteID string) (ddr.Terms, error) {
	site, err := s.store.GetSite(ctx, siteID)
	if err != nil {
		return ddr.Terms{}, fmt.Errorf("get site: %w", err)
	}
	return s.Terms(ctx, site)
}

// StopDebitsNotAuthorised stops the debits not yet sent of the site's linked customers whose
// Direct Debit Request does not name the debit user ID userID, and counts those customers: they
// signed up before the site was given it (on another rail, whose terms named no user ID, or
// another), or before the terms agreed were kept (unknown, so counted). A debit of theirs under
// userID would go out under an authority that does not name it, which BECS requires: their rows
// fail customerNotActive until they sign up again, those of the steps to come (dropUnauthorised)
// and those a rail holds queued, which are withdrawn here (as withdrawUnsent does, but for the
// sandbox's, which stand: it debits whoever is linked) rather than at their
// batch's next step, which a cut-off under userID could come before. The operator's command that
// sets a site's BECS user ID runs it just after, and says how many customers must sign up again;
// run again, it stops nothing more and counts the same.
func (s *Service) StopDebitsNotAuthorised(ctx context.Context, site Site, userID string) (int, error) {
	n, f := 0, LinkFilter{State: LinkLinked, Limit: MaxPageSize}
	for {
		links, next, err := s.Links(ctx, site, f)
		if err != nil {
			return 0, err
		}
		for _, l := range links {
			if authorises(l.Terms, userID) {
				continue
			}
			n++
			// Their debits on the sandbox rail stand: it debits whoever is linked (debitable).
			byRail, err := s.unsentByRail(ctx, l)
			if err != nil {
				return 0, err
			}
			delete(byRail, rail.Sandbox)
			if err := s.withdrawFrom(ctx, byRail); err != nil {
				return 0, err
			}
		}
		if next == "" {
			return n, nil
		}
		f.After = next
	}
}

// AgreedTerms are the terms the customer of l agreed to at signup (Link.Terms); for a link linked
// before they were kept, those of its site as they stand (site, read fresh).
func (s *Service) AgreedTerms(ctx context.Context, l Link, site Site) (ddr.Terms, error) {
	if l.Terms != (ddr.Terms{}) {
		return l.Terms, nil
	}
	return s.Terms(ctx, site)
}

// SignupRepeatWindow is how long after a signup a confirmation sent again from its browser is
// taken for the same one (SignedUpFrom).
const SignupRepeatWindow = 10 * time.Minute

// SignedUpFrom reports whether l, as LinkByID read it, was linked less than SignupRepeatWindow
// ago by CompleteSignup from browser: its confirmation sent again from that browser (a double
// click, whose first answer the browser abandoned) is the same one, to be answered as the first
// was, and links nothing again. Anyone else, the partner who holds the signup link included,
// does not know browser.
func (s *Service) SignedUpFrom(ctx context.Context, l Link, browser string) (bool, error) {
	now := s.now()
	if l.StateAt(now) != LinkLinked || now.Sub(l.LinkedAt) >= SignupRepeatWindow {
		return false, nil
	}
	from, err := s.store.SignedUpFrom(ctx, l.ID, browser)
	if err != nil {
		return false, fmt.Errorf("signed up from: %w", err)
	}
	return from, nil
}

func (s *Service) linkCustomer(ctx context.Context, l Link, c Customer, terms ddr.Terms, browser string) (Link, error) {
	now := s.now()
	if state := l.StateAt(now); state != LinkInvited {
		return Link{}, Errorf(CodeLinkInvalidState, "customerReference",
			fmt.Sprintf("Only an invited customer link can be completed; this one is %s.", state))
	}
	linked, err := s.store.LinkCustomer(ctx, l.ID, c, terms, browser, now)
	if errors.Is(err, ErrStale) {
		return Link{}, Errorf(CodeLinkInvalidState, "customerReference",
			"The invitation changed state while the signup was being completed.")
	}
	if err != nil {
		return Link{}, fmt.Errorf("link customer: %w", err)
	}
	return linked, nil
}

// RevokeByCustomer revokes a linked link at the customer's request (the agreement page).
func (s *Service) RevokeByCustomer(ctx context.Context, linkID string) (Link, error) {
	l, err := s.store.GetLink(ctx, linkID)
	if errors.Is(err, ErrNotFound) {
		return Link{}, linkNotFound()
	}
	if err != nil {
		return Link{}, fmt.Errorf("get link: %w", err)
	}
	if l.StoredState != LinkLinked {
		return Link{}, Errorf(CodeLinkInvalidState, "customerReference",
			fmt.Sprintf("Only a linked agreement can be revoked by the customer; this one is %s.", l.StateAt(s.now())))
	}
	return s.revoke(ctx, l, RevokedByCustomer)
}

// MaxAccountName is the longest title of an account: the width of the field of a direct-entry
// file it goes into.
const MaxAccountName = 32

// ValidateCustomer normalises what a customer typed at signup and reports every problem at once.
// Text must be printable (PlainText). An individual's business name and ABN are dropped.
func ValidateCustomer(c Customer, d Declarations) (Customer, error) {
	var errs Errors
	invalid := func(target, message string) { errs = append(errs, Errorf(CodeCustomerInvalidField, target, message)) }
	c.Name = strings.TrimSpace(c.Name)
	switch n := utf8.RuneCountInString(c.Name); {
	case n < 1 || n > 100 || !PlainText(c.Name):
		invalid("name", "Enter your name (up to 100 characters).")
	case strings.ContainsFunc(c.Name, bidiControl):
		// They reorder the text shown around them (on the pages, in emails, in an operator's tools).
		invalid("name", "Enter your name without hidden characters that change the direction of text.")
	case !strings.ContainsFunc(c.Name, unicode.IsLetter): // only spaces, digits, or invisible characters
		invalid("name", "Enter your name: it must contain at least one letter.")
	case webAddress.MatchString(asShown(c.Name)):
		// The emails greet the customer by name, and mail clients make links of addresses:
		// whoever holds the signup link (the partner too) would have Pyng's sender carry its own.
		invalid("name", "Enter your name without a web or email address.")
	case dottedWord.MatchString(asShown(c.Name)):
		// "J.Smith" cannot be told from a domain such as "x.com" without a list of every
		// top-level domain: the customer is asked for the space that makes it no address.
		invalid("name", "Put a space after each full stop in your name, as in J. Smith: without one, email programs may take it for a web address.")
	case digitCount(norm.NFKC.String(c.Name)) >= 8:
		// A phone number, which mail clients make a link to call, as they do addresses.
		invalid("name", "Enter your name without a phone number.")
	}
	c.Email = strings.TrimSpace(c.Email)
	switch {
	case strings.ContainsFunc(c.Email, hiddenCharacter):
		// Copied with the address from a document or a page, it looks like the address meant on
		// the review page, yet no email would reach it, nor match it when the customer asks for a
		// new management link.
		invalid("email", "Type your email address in again: it holds a hidden character (one that shows nothing, or changes the direction of text), perhaps copied with it.")
	case !validEmail(c.Email):
		invalid("email", "Enter a valid email address, like name@example.com.")
	}
	plain := PlainText(c.AccountName) // before blanks are collapsed, which would hide line breaks and tabs
	c.AccountName = phonePunctuation.Replace(strings.Join(strings.Fields(c.AccountName), " "))
	if n := utf8.RuneCountInString(c.AccountName); n < 1 || n > MaxAccountName || !plain {
		invalid("accountName", fmt.Sprintf("Enter the account name as your bank shows it (up to %d characters).", MaxAccountName))
	}
	switch c.Type {
	case CustomerIndividual:
		c.BusinessName, c.ABN = "", ""
	case CustomerBusiness:
		c.BusinessName = strings.TrimSpace(c.BusinessName)
		switch n := utf8.RuneCountInString(c.BusinessName); {
		case n < 1 || n > 100 || !PlainText(c.BusinessName):
			invalid("businessName", "Enter the business's name (up to 100 characters).")
		case strings.ContainsFunc(c.BusinessName, bidiControl):
			invalid("businessName", "Enter the business's name without hidden characters that change the direction of text.")
		}
		c.ABN = stripSeparators(c.ABN)
		if !ValidABN(c.ABN) {
			invalid("abn", "Enter the business's ABN: 11 digits, like 51 824 753 556.")
		}
	default:
		c.BusinessName, c.ABN = "", ""
		invalid("customerType", "Choose whether the account is yours or a business's.")
	}
	c.BSB = stripSeparators(c.BSB)
	if !allDigits(c.BSB) || len(c.BSB) != 6 {
		invalid("bsb", "Enter a BSB of 6 digits, like 062-000.")
	}
	c.AccountNumber = stripSeparators(c.AccountNumber)
	switch {
	case !allDigits(c.AccountNumber) || len(c.AccountNumber) < 5 || len(c.AccountNumber) > 9:
		invalid("accountNumber", "Enter an account number of 5 to 9 digits.")
	case strings.Trim(c.AccountNumber, "0") == "":
		// No bank account is all zeros, and a direct-entry file refuses one.
		invalid("accountNumber", "Enter your account number: it cannot be all zeros.")
	}
	if !d.Authorised {
		// The customer alone gives the Direct Debit Request: it binds an account only they may
		// operate, not a joint account that needs another holder's signature.
		invalid("authorised", "Tick the box to confirm that you are authorised to operate this account on your own.")
	}
	if !d.Consent {
		invalid("consent", "Tick the box to agree to the direct debit agreement.")
	}
	return c, errs.Err()
}

// webAddress matches what a mail client or a page would make a link of, in a name: a URL's scheme
// ("://"), "www.", an email address's "@", or a domain name: a dot between letters or digits,
// without a space, then more of them and a slash ("evil.example/claim"). dottedWord matches a
// word ending at a top-level domain of two letters or more ("bit.ly", "evil.example"), which is
// also a full stop without its space ("J.Smith"). Initials ("J.R.R. Tolkien", "A.B.C.
// Holdings") and abbreviations ("St. John") are neither: after their dots come spaces, dots and
// single letters.
var (
	webAddress = regexp.MustCompile(`(?i)://|www\.|@|[\p{L}\p{N}]\.[\p{L}\p{N}][\p{L}\p{N}.-]*/`)
	dottedWord = regexp.MustCompile(`[\p{L}\p{N}]\.\p{L}{2,}(?:[^\p{L}\p{N}]|$)`)
)

// phonePunctuation maps the apostrophes and dashes a phone's keyboard or a word processor types
// in place of ' and - (iOS's smart punctuation types ’ for '), which the BECS character set of an
// account name lacks, to the ones it has: the account name O’BRIEN is kept as O'BRIEN rather
// than refused.
var phonePunctuation = strings.NewReplacer("\u2018", "'", "\u2019", "'", "\u02bc", "'",
	"\u2010", "-", "\u2011", "-", "\u2012", "-", "\u2013", "-", "\u2014", "-")

// asShown is a name as a mail client reads it for addresses: without the characters that show
// nothing, in compatibility form (a full-width ＠ or ． is the one it looks like), and with the
// other full stops a browser takes for a domain's as ".".
func asShown(name string) string {
	return domainDots.Replace(norm.NFKC.String(withoutHidden(name)))
}

// domainDots are the full stops other than "." that a browser takes for a domain's dots (IDNA's
// label separators) once a name is in compatibility form (NFKC, which makes U+FF0E a "." and
// U+FF61 a U+3002): "evil。example" opens evil.example.
var domainDots = strings.NewReplacer("\u3002", ".")

// digitCount is how many decimal digits s holds, of any script.
func digitCount(s string) int {
	n := 0
	for _, r := range s {
		if unicode.IsDigit(r) {
			n++
		}
	}
	return n
}

// bidiControl reports whether r is one of Unicode's explicit bidirectional embeddings, overrides
// or isolates (U+202A–U+202E, U+2066–U+2069).
func bidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// hiddenCharacter reports whether r is one of Unicode's format characters (Cf), which show
// nothing or change the direction of the text around them: zero-width spaces and joiners, soft
// hyphens, byte order marks, bidirectional controls. No email address holds one.
func hiddenCharacter(r rune) bool { return unicode.Is(unicode.Cf, r) }

// withoutHidden is s without its hidden characters (hiddenCharacter): what a reader sees of it.
// A name may hold some (a zero-width non-joiner is part of Persian spelling), so they are dropped
// before looking for an address, not refused: "evil\u200b.example" reads as evil.example.
func withoutHidden(s string) string {
	return strings.Map(func(r rune) rune {
		if hiddenCharacter(r) {
			return -1
		}
		return r
	}, s)
}

func validEmail(s string) bool {
	if len(s) > 254 || !PlainText(s) || strings.ContainsFunc(s, hiddenCharacter) {
		return false
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && strings.Contains(s[at+1:], ".")
}

// stripSeparators removes the spaces and dashes a number is written with: of any kind, as a page
// or a document it is copied from writes them (ABN Lookup's no-break spaces, a typographic dash
// in 062–000), but not a control character (a tab), which a person does not type in a number.
func stripSeparators(s string) string {
	return strings.Map(func(r rune) rune {
		if (unicode.IsSpace(r) && !unicode.IsControl(r)) || unicode.Is(unicode.Pd, r) {
			return -1
		}
		return r
	}, s)
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// maxNameLength bounds the name of an organisation or a site, as the legal name of a site's debit
// user is bounded.
const maxNameLength = 200

// checkName checks the name of an organisation or a site: a site's is the title of the
// customer's pages and the subject of their emails, so it is one line of text a person typed,
// never a control character (a line break, an escape) nor a page of text.
func checkName(name string) error {
	if n := utf8.RuneCountInString(name); n < 1 || n > maxNameLength || !PlainText(name) {
		return Errorf(CodeInvalidField, "name", fmt.Sprintf("name must be 1 to %d characters, without control characters.", maxNameLength))
	}
	return nil
}

// CreateOrganisation registers a partner organisation (operators only).
func (s *Service) CreateOrganisation(ctx context.Context, name string) (Organisation, error) {
	name = strings.TrimSpace(name)
	if err := checkName(name); err != nil {
		return Organisation{}, err
	}
	o := Organisation{ID: NewID("org"), Name: name, CreatedAt: s.now()}
	if err := s.store.CreateOrganisation(ctx, o); err != nil {
		return Organisation{}, fmt.Errorf("create organisation: %w", err)
	}
	return o, nil
}

// CreateSite adds a site to an organisation (operators only): in AUD, on the sandbox rail, the
// only currency and rail so far.
func (s *Service) CreateSite(ctx context.Context, organisationID, name string) (Site, error) {
	name = strings.TrimSpace(name)
	if err := checkName(name); err != nil {
		return Site{}, err
	}
	site := Site{ID: NewID("site"), OrganisationID: organisationID, Name: name, Currency: "AUD", Rail: rail.Sandbox, CreatedAt: s.now()}
	err := s.store.CreateSite(ctx, site)
	if errors.Is(err, ErrNotFound) {
		return Site{}, unknownOrganisation()
	}
	if err != nil {
		return Site{}, fmt.Errorf("create site: %w", err)
	}
	return site, nil
}

// SetSiteRail moves a site to the named rail (operators only): the batches accepted from then on
// go to that rail; a batch accepted before stays on the rail it was accepted on, so that no debit
// is taken by two rails. The rail must be registered with the service, and a rail that collects
// (any but the sandbox's) needs the site's debit user (CanCollect).
func (s *Service) SetSiteRail(ctx context.Context, siteID, railName string) (Site, error) {
	if _, ok := s.rails[railName]; !ok {
		return Site{}, Errorf(CodeInvalidField, "rail", fmt.Sprintf("rail must be one of %s.", strings.Join(slices.Sorted(maps.Keys(s.rails)), ", ")))
	}
	if railName != rail.Sandbox {
		site, err := s.store.GetSite(ctx, siteID)
		if errors.Is(err, ErrNotFound) {
			return Site{}, Errorf(CodeInvalidField, "site", "No site with this id exists.")
		}
		if err != nil {
			return Site{}, fmt.Errorf("get site: %w", err)
		}
		if err := site.CanCollect(); err != nil {
			return Site{}, err
		}
	}
	err := s.store.SetSiteRail(ctx, siteID, railName)
	if errors.Is(err, ErrNotFound) {
		return Site{}, Errorf(CodeInvalidField, "site", "No site with this id exists.")
	}
	if err != nil {
		return Site{}, fmt.Errorf("set site rail: %w", err)
	}
	s.sites.Delete(siteID)
	site, err := s.store.GetSite(ctx, siteID)
	if err != nil {
		return Site{}, fmt.Errorf("get site: %w", err)
	}
	return site, nil
}

// CreateClient issues API credentials for an organisation (operators only). The secret is
// returned once; only its hash is stored.
func (s *Service) CreateClient(ctx context.Context, organisationID string, scopes []Scope) (Client, string, error) {
	if len(scopes) == 0 {
		return Client{}, "", Errorf(CodeInvalidField, "scopes", "Name at least one scope.")
	}
	secret := newClientSecret()
	c := Client{ID: NewID("cli"), OrganisationID: organisationID, SecretHash: HashSecret(secret), Scopes: scopes, CreatedAt: s.now()}
	err := s.store.CreateClient(ctx, c)
	if errors.Is(err, ErrNotFound) {
		return Client{}, "", unknownOrganisation()
	}
	if err != nil {
		return Client{}, "", fmt.Errorf("create client: %w", err)
	}
	return c, secret, nil
}

// RevokeClient stops a client from obtaining and using tokens (operators only).
func (s *Service) RevokeClient(ctx context.Context, clientID string) (Client, error) {
	c, err := s.store.RevokeClient(ctx, clientID, s.now())
	if errors.Is(err, ErrNotFound) {
		return Client{}, unknownClient()
	}
	if err != nil {
		return Client{}, fmt.Errorf("revoke client: %w", err)
	}
	return c, nil
}

// AuthenticateClient checks client credentials.
func (s *Service) AuthenticateClient(ctx context.Context, clientID, secret string) (Client, error) {
	c, err := s.Client(ctx, clientID)
	if err != nil {
		return Client{}, err
	}
	if !c.SecretMatches(secret) || c.Revoked() {
		return Client{}, ErrInvalidClient
	}
	return c, nil
}

// Client returns an API client, revoked or not, as the check of an access token needs it; it
// returns ErrInvalidClient when no client has the id.
func (s *Service) Client(ctx context.Context, clientID string) (Client, error) {
	if !PlainText(clientID) {
		return Client{}, ErrInvalidClient
	}
	c, err := s.store.GetClient(ctx, clientID)
	if errors.Is(err, ErrNotFound) {
		return Client{}, ErrInvalidClient
	}
	if err != nil {
		return Client{}, fmt.Errorf("get client: %w", err)
	}
	return c, nil
}

// EraseBankDetails erases the customer's details (name, email, BSB, account number) of the links
// that ended retention ago or earlier, and has each rail that keeps copies of accounts erase those
// of debits submitted as long ago (the periodic job). The links keep their states and times: what
// the partner sees does not change. It returns how many links it erased, and what the rails did.
func (s *Service) EraseBankDetails(ctx context.Context, retention time.Duration) (links int, rails rail.Erased, err error) {
	before := s.now().Add(-retention)
	links, err = s.store.EraseBankDetails(ctx, before)
	if err != nil {
		return links, rails, fmt.Errorf("erase bank details of links: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(s.rails)) {
		if r, ok := s.rails[name].(rail.AccountEraser); ok {
			erased, err := r.EraseAccounts(ctx, before)
			rails = rails.Add(erased)
			if err != nil {
				return links, rails, fmt.Errorf("erase accounts of rail %s: %w", name, err)
			}
		}
	}
	return links, rails, nil
}
