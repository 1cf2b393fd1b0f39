package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/seal"
	"github.com/pyng/receivables/storage"
)

// Reopen opens, at each call, the same database of one test with the key ring given (nil for
// none), and closes it when the test ends.
type Reopen func(t *testing.T, keys *seal.Keyring) storage.Database

// RunSealing runs the suite of what the store keeps sealed: customers' details and signing keys,
// sealed with the current key of the ring, read whether sealed with any key of the ring or
// written in plaintext before sealing existed, sealed again by rotation, and erased after the
// links end. fresh returns the Reopen of a fresh, empty database for one test.
func RunSealing(t *testing.T, fresh func(t *testing.T) Reopen) {
	s := sealingSuite{fresh: fresh}
	t.Run("Sealed", s.sealed)
	t.Run("Reseal", s.reseal)
	t.Run("SigningKeyRotation", s.signingKeyRotation)
	t.Run("EraseBankDetails", s.eraseBankDetails)
}

type sealingSuite struct {
	fresh func(t *testing.T) Reopen
}

// raw runs a statement written with ? placeholders on db's own tables, bypassing the store.
func raw(t *testing.T, db storage.Database, query string, args ...any) {
	t.Helper()
	if _, err := db.Conn().Exec(context.Background(), dialect(db, query), args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// rawStrings reads the text columns of the rows a query selects, NULL as "".
func rawStrings(t *testing.T, db storage.Database, query string, args ...any) [][]string {
	t.Helper()
	var out [][]string
	err := db.Conn().Query(context.Background(), dialect(db, query), args, func(row storage.Scanner) error {
		cols := make([]*string, strings.Count(strings.Split(query, " FROM ")[0], ",")+1)
		dest := make([]any, len(cols))
		for i := range cols {
			dest[i] = &cols[i]
		}
		if err := row.Scan(dest...); err != nil {
			return err
		}
		var r []string
		for _, p := range cols {
			if p == nil {
				r = append(r, "")
			} else {
				r = append(r, *p)
			}
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

// dialect numbers the ? placeholders of query for PostgreSQL.
func dialect(db storage.Database, query string) string {
	if db.Conn().Dialect() != storage.EnginePostgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

const storedDetails = `SELECT customer_name, customer_email, customer_bsb, customer_account_number, customer_account_name,
customer_type, customer_business_name, customer_abn FROM customer_links WHERE id = ?`

// storedSecret is a signing key's secret as stored.
func storedSecret(t *testing.T, db storage.Database, id string) []string {
	t.Helper()
	var secret []byte
	err := db.Conn().Query(context.Background(), dialect(db, `SELECT secret FROM signing_keys WHERE id = ?`), []any{id},
		func(row storage.Scanner) error { return row.Scan(&secret) })
	if err != nil || secret == nil {
		t.Fatalf("the secret of signing key %s: %q, %v", id, secret, err)
	}
	return []string{string(secret)}
}

// wantSealedWith fails unless each value is sealed with key id and shows none of plaintexts.
func wantSealedWith(t *testing.T, what, id string, values []string, plaintexts ...string) {
	t.Helper()
	for _, v := range values {
		if !strings.HasPrefix(v, "v1."+id+".") {
			t.Fatalf("%s: stored %q, want a value sealed with key %s", what, v, id)
		}
		for _, p := range plaintexts {
			if strings.Contains(v, p) {
				t.Fatalf("%s: stored %q shows %q", what, v, p)
			}
		}
	}
}

// linked is a fresh database's store with a site and one customer linked at it.
func linked(t *testing.T, db storage.Database, ref string) (billing.Site, billing.Link) {
	t.Helper()
	org := createOrganisation(t, db)
	site := createSite(t, db, org.ID)
	return site, linkCustomer(t, db, createLink(t, db, site.ID, ref, t0).ID, t0)
}

func (s sealingSuite) sealed(t *testing.T) {
	t.Run("a customer's details are stored sealed with the current key, and every read but a list opens them", func(t *testing.T) {
		t.Parallel()
		db := s.fresh(t)(t, dbtest.KeyringOf(t, "k2", "k1"))
		site, l := linked(t, db, "C1")
		wantEqual(t, "LinkCustomer's link", l.Customer, customer)
		stored := rawStrings(t, db, storedDetails, l.ID)[0]
		wantSealedWith(t, "customer details", "k2", stored, customer.Name, customer.BSB, customer.AccountNumber, customer.Email,
			customer.AccountName, customer.BusinessName, customer.ABN, string(customer.Type))

		wantEqual(t, "GetLink", getLink(t, db, l.ID).Customer, customer)
		wantEqual(t, "GetCurrentLink", getCurrentLink(t, db, site.ID, "C1").Customer, customer)
		listed, err := db.ListLinks(context.Background(), site.ID, billing.LinkFilter{Limit: 10}, t0)
		wantErr(t, "ListLinks", err, nil)
		wantEqual(t, "ListLinks", listed[0].Customer, billing.Customer{}) // the partner's list: no details
		b, rows := batchOf(site.ID, billing.BatchRequest{Reference: "B1", Rows: []billing.RowRequest{{Reference: "R1", CustomerReference: "C1", Amount: 100}}}, t0)
		if _, _, err := db.CreateBatch(context.Background(), b, rows); err != nil {
			t.Fatal(err)
		}
		pending, err := db.PendingRows(context.Background(), b.ID)
		wantErr(t, "PendingRows", err, nil)
		wantEqual(t, "PendingRows", pending[0].Customer, customer)
		revoked := revokeLink(t, db, l.ID, t0.Add(time.Minute))
		wantEqual(t, "RevokeLink's link", revoked.Customer, customer)
	})
	t.Run("a signing key's secret is stored sealed with the current key", func(t *testing.T) {
		t.Parallel()
		db := s.fresh(t)(t, dbtest.KeyringOf(t, "k2", "k1"))
		k := signingKey(1)
		got, err := db.EnsureSigningKey(context.Background(), k)
		wantErr(t, "EnsureSigningKey", err, nil)
		wantEqual(t, "EnsureSigningKey", got, k)
		wantSealedWith(t, "signing key", "k2", storedSecret(t, db, k.ID), string(k.Secret))
		keys, err := db.SigningKeys(context.Background())
		wantErr(t, "SigningKeys", err, nil)
		wantEqual(t, "SigningKeys", keys, []billing.SigningKey{k})
	})
	t.Run("values written in plaintext before sealing existed are read", func(t *testing.T) {
		t.Parallel()
		reopen := s.fresh(t)
		db := reopen(t, dbtest.KeyringOf(t, "k1"))
		_, l := linked(t, db, "C1")
		k := signingKey(1)
		if _, err := db.EnsureSigningKey(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		raw(t, db, `UPDATE customer_links SET customer_name = ?, customer_email = ?, customer_bsb = ?, customer_account_number = ?,
			customer_account_name = ?, customer_type = ?, customer_business_name = ?, customer_abn = ? WHERE id = ?`,
			customer.Name, customer.Email, customer.BSB, customer.AccountNumber,
			customer.AccountName, string(customer.Type), customer.BusinessName, customer.ABN, l.ID)
		raw(t, db, `UPDATE signing_keys SET secret = ? WHERE id = ?`, k.Secret, k.ID)
		for _, keys := range []*seal.Keyring{dbtest.KeyringOf(t, "k1"), nil} {
			db := reopen(t, keys)
			wantEqual(t, fmt.Sprintf("GetLink with ring %v", keys.IDs()), getLink(t, db, l.ID).Customer, customer)
			got, err := db.SigningKeys(context.Background())
			wantErr(t, "SigningKeys", err, nil)
			wantEqual(t, fmt.Sprintf("SigningKeys with ring %v", keys.IDs()), got, []billing.SigningKey{k})
		}
	})
	t.Run("values sealed with an earlier key are read while the ring has it, and never read wrong", func(t *testing.T) {
		t.Parallel()
		reopen := s.fresh(t)
		db := reopen(t, dbtest.KeyringOf(t, "k1"))
		site, l := linked(t, db, "C1")
		k := signingKey(1)
		if _, err := db.EnsureSigningKey(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		db = reopen(t, dbtest.KeyringOf(t, "k2", "k1"))
		wantEqual(t, "GetLink with k2,k1", getLink(t, db, l.ID).Customer, customer)
		got, err := db.EnsureSigningKey(context.Background(), signingKey(2))
		wantErr(t, "EnsureSigningKey with k2,k1", err, nil)
		wantEqual(t, "EnsureSigningKey with k2,k1", got, k)
		for _, keys := range []*seal.Keyring{dbtest.KeyringOf(t, "k2"), nil} {
			db := reopen(t, keys)
			if l, err := db.GetLink(context.Background(), l.ID); err == nil {
				t.Fatalf("GetLink with ring %v = %+v, want an error: the ring lacks k1", keys.IDs(), l.Customer)
			}
			if keys, err := db.SigningKeys(context.Background()); err == nil {
				t.Fatalf("SigningKeys with a ring lacking k1 = %+v, want an error", keys)
			}
			// The site's list opens no details: the link that would not open is listed.
			if listed, err := db.ListLinks(context.Background(), site.ID, billing.LinkFilter{Limit: 10}, t0); err != nil || len(listed) != 1 || listed[0].ID != l.ID {
				t.Fatalf("ListLinks with ring %v = %+v, %v; want the link", keys.IDs(), listed, err)
			}
		}
	})
	t.Run("without a key ring no customer's details or signing key is stored", func(t *testing.T) {
		t.Parallel()
		db := s.fresh(t)(t, nil)
		org := createOrganisation(t, db)
		site := createSite(t, db, org.ID)
		l := createLink(t, db, site.ID, "C1", t0)
		_, err := db.LinkCustomer(context.Background(), l.ID, customer, terms, "", t0)
		wantErr(t, "LinkCustomer", err, seal.ErrNoKey)
		wantEqual(t, "the link after LinkCustomer failed", getLink(t, db, l.ID), l)
		_, err = db.EnsureSigningKey(context.Background(), signingKey(1))
		wantErr(t, "EnsureSigningKey", err, seal.ErrNoKey)
	})
}

func (s sealingSuite) reseal(t *testing.T) {
	t.Run("rotation seals plaintext and earlier keys' values with the current key, once", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		reopen := s.fresh(t)
		db := reopen(t, dbtest.KeyringOf(t, "k1"))
		org := createOrganisation(t, db)
		site := createSite(t, db, org.ID)
		var ids []string
		for i := range 7 {
			ids = append(ids, linkCustomer(t, db, createLink(t, db, site.ID, fmt.Sprintf("C%d", i), t0).ID, t0).ID)
		}
		createLink(t, db, site.ID, "invited", t0) // no details: nothing to seal
		k := signingKey(1)
		if _, err := db.EnsureSigningKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		// Two links in plaintext, as written before sealing; five sealed with k1; then one
		// sealed with k2, the new current key.
		for _, id := range ids[:2] {
			raw(t, db, `UPDATE customer_links SET customer_name = ?, customer_email = ?, customer_bsb = ?, customer_account_number = ?,
				customer_account_name = ?, customer_type = ?, customer_business_name = ?, customer_abn = ? WHERE id = ?`,
				customer.Name, customer.Email, customer.BSB, customer.AccountNumber,
				customer.AccountName, string(customer.Type), customer.BusinessName, customer.ABN, id)
		}
		db = reopen(t, dbtest.KeyringOf(t, "k2", "k1"))
		ids = append(ids, linkCustomer(t, db, createLink(t, db, site.ID, "C-new", t0).ID, t0).ID)

		for run, want := range []struct{ links, keys int }{{7, 1}, {0, 0}} {
			links, err := db.ResealLinks(ctx, 3)
			wantErr(t, "ResealLinks", err, nil)
			keys, err := db.ResealSigningKeys(ctx)
			wantErr(t, "ResealSigningKeys", err, nil)
			if links != want.links || keys != want.keys {
				t.Fatalf("run %d: resealed %d links and %d keys, want %d and %d", run+1, links, keys, want.links, want.keys)
			}
		}
		for _, id := range ids {
			wantSealedWith(t, "link "+id, "k2", rawStrings(t, db, storedDetails, id)[0], customer.Name, customer.BSB)
		}
		wantSealedWith(t, "signing key", "k2", storedSecret(t, db, k.ID), string(k.Secret))
		// The old key can go: everything reads with k2 alone.
		db = reopen(t, dbtest.KeyringOf(t, "k2"))
		for _, id := range ids {
			wantEqual(t, "GetLink with k2 alone", getLink(t, db, id).Customer, customer)
		}
		got, err := db.SigningKeys(ctx)
		wantErr(t, "SigningKeys with k2 alone", err, nil)
		wantEqual(t, "SigningKeys with k2 alone", got, []billing.SigningKey{k})
	})
}

func (s sealingSuite) signingKeyRotation(t *testing.T) {
	t.Run("rotation adds the current key and keeps the earlier, and the first key never comes back", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		db := s.fresh(t)(t, dbtest.KeyringOf(t, "k1"))
		first := signingKey(1)
		if _, err := db.EnsureSigningKey(ctx, first); err != nil {
			t.Fatal(err)
		}
		second := signingKey(2)
		retired, err := db.RotateSigningKey(ctx, second, false)
		wantErr(t, "RotateSigningKey", err, nil)
		if retired != 0 {
			t.Fatalf("RotateSigningKey retired %d keys, want none", retired)
		}
		keys, err := db.SigningKeys(ctx)
		wantErr(t, "SigningKeys", err, nil)
		wantEqual(t, "SigningKeys", keys, []billing.SigningKey{second, first})
		got, err := db.EnsureSigningKey(ctx, signingKey(3))
		wantErr(t, "EnsureSigningKey after rotation", err, nil)
		wantEqual(t, "EnsureSigningKey after rotation", got, second)

		third := signingKey(4)
		retired, err = db.RotateSigningKey(ctx, third, true)
		wantErr(t, "RotateSigningKey retiring the others", err, nil)
		if retired != 2 {
			t.Fatalf("RotateSigningKey retired %d keys, want 2", retired)
		}
		got, err = db.EnsureSigningKey(ctx, signingKey(5))
		wantErr(t, "EnsureSigningKey after the first key was retired", err, nil)
		wantEqual(t, "EnsureSigningKey after the first key was retired", got, third)
		keys, err = db.SigningKeys(ctx)
		wantErr(t, "SigningKeys", err, nil)
		wantEqual(t, "SigningKeys", keys, []billing.SigningKey{third})
	})
	t.Run("of concurrent rotations each adds its key or fails as a duplicate", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		db := s.fresh(t)(t, dbtest.KeyringOf(t, "k1"))
		first := signingKey(0)
		if _, err := db.EnsureSigningKey(ctx, first); err != nil {
			t.Fatal(err)
		}
		const n = 6
		errs := make([]error, n)
		concurrently(n, func(i int) { _, errs[i] = db.RotateSigningKey(ctx, signingKey(i+1), false) })
		added := 1
		for i, err := range errs {
			if err == nil {
				added++
			} else if !errors.Is(err, billing.ErrDuplicate) {
				t.Fatalf("RotateSigningKey #%d: %v, want success or ErrDuplicate", i, err)
			}
		}
		keys, err := db.SigningKeys(ctx)
		wantErr(t, "SigningKeys", err, nil)
		if len(keys) != added || keys[len(keys)-1].ID != first.ID {
			t.Fatalf("SigningKeys = %d keys ending with %s, want %d ending with the first", len(keys), keys[len(keys)-1].ID, added)
		}
	})
}

func (s sealingSuite) eraseBankDetails(t *testing.T) {
	t.Run("the details of links revoked by the cutoff are erased, and nothing else changes", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		db := s.fresh(t)(t, dbtest.KeyringOf(t, "k1"))
		org := createOrganisation(t, db)
		site := createSite(t, db, org.ID)
		cutoff := t0.Add(time.Hour)
		due := revokeLink(t, db, linkCustomer(t, db, createLink(t, db, site.ID, "due", t0).ID, t0).ID, cutoff)
		notYet := revokeLink(t, db, linkCustomer(t, db, createLink(t, db, site.ID, "not-yet", t0).ID, t0).ID, cutoff.Add(time.Millisecond))
		active := linkCustomer(t, db, createLink(t, db, site.ID, "active", t0).ID, t0)
		uninvited := revokeLink(t, db, createLink(t, db, site.ID, "uninvited", t0).ID, t0)
		expired := createLink(t, db, site.ID, "expired", t0.Add(-2*ttl))
		before, err := db.ListLinks(ctx, site.ID, billing.LinkFilter{Limit: 10}, cutoff)
		wantErr(t, "ListLinks", err, nil)

		for run, want := range []int{1, 0} {
			n, err := db.EraseBankDetails(ctx, cutoff)
			wantErr(t, "EraseBankDetails", err, nil)
			if n != want {
				t.Fatalf("run %d: EraseBankDetails erased %d links, want %d", run+1, n, want)
			}
		}
		erased := due // its agreed terms, the site's, are kept
		erased.Customer = billing.Customer{}
		wantEqual(t, "the erased link", getLink(t, db, due.ID), erased)
		if stored := rawStrings(t, db, storedDetails, due.ID)[0]; strings.Join(stored, "") != "" {
			t.Fatalf("the erased link stores %q", stored)
		}
		for _, l := range []billing.Link{notYet, active, uninvited, expired} {
			wantEqual(t, "link "+l.CustomerReference, getLink(t, db, l.ID), l)
		}
		after, err := db.ListLinks(ctx, site.ID, billing.LinkFilter{Limit: 10}, cutoff)
		wantErr(t, "ListLinks", err, nil)
		for i := range before {
			before[i].Customer, after[i].Customer = billing.Customer{}, billing.Customer{}
		}
		wantEqual(t, "what the partner sees of the links", after, before)
	})
	t.Run("erasure goes through more links than one statement takes", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		db := s.fresh(t)(t, dbtest.KeyringOf(t, "k1"))
		org := createOrganisation(t, db)
		site := createSite(t, db, org.ID)
		const n = 1203
		values := make([]string, n)
		for i := range values {
			values[i] = fmt.Sprintf("('lnk_%04d', '%s', 'C%04d', 'revoked', TRUE, %d, %d, %d, 'customer', 'x', '062000')",
				i, site.ID, i, billing.Millis(t0), billing.Millis(t0.Add(ttl)), billing.Millis(t0))
		}
		raw(t, db, `INSERT INTO customer_links (id, site_id, customer_reference, state, is_current, created_at, expires_at, revoked_at, revoked_by, customer_name, customer_bsb) VALUES `+
			strings.Join(values, ", "))
		erased, err := db.EraseBankDetails(ctx, t0)
		wantErr(t, "EraseBankDetails", err, nil)
		if erased != n {
			t.Fatalf("EraseBankDetails erased %d links, want %d", erased, n)
		}
	})
}
