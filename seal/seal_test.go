package seal_test

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pyng/receivables/seal"
)

// key returns a key ring entry of id with a key of 32 bytes of b.
func key(id string, b byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune(b)), seal.KeySize)))
}

func mustParse(t *testing.T, ring string) *seal.Keyring {
	t.Helper()
	k, err := seal.Parse(ring)
	if err != nil {
		t.Fatalf("Parse(%q): %v", ring, err)
	}
	return k
}

func TestParseValidatesTheKeyRing(t *testing.T) {
	raw := []byte(strings.Repeat("k", seal.KeySize))
	cases := []struct {
		rule    string
		ring    string
		wantIDs []string
		wantErr string
	}{
		{"one key", key("k1", 'a'), []string{"k1"}, ""},
		{"the first key is current, in the order given", key("k2", 'b') + "," + key("k1", 'a'), []string{"k2", "k1"}, ""},
		{"newlines separate keys as commas do, blanks are ignored", " " + key("k2", 'b') + "\n\n" + key("k1", 'a') + "\n", []string{"k2", "k1"}, ""},
		{"the URL alphabet without padding is read", "k1:" + base64.RawURLEncoding.EncodeToString(raw), []string{"k1"}, ""},
		{"an empty ring is refused", " , \n", nil, "empty"},
		{"an entry without a colon is refused", "k1" + base64.StdEncoding.EncodeToString(raw), nil, "entry 1 is not id:base64key"},
		{"a key id with a dot is refused", key("k.1", 'a'), nil, `key id "k.1"`},
		{"an empty key id is refused", key("", 'a'), nil, `key id ""`},
		{"a key id used twice is refused", key("k1", 'a') + "," + key("k1", 'b'), nil, `entry 2: key id "k1" appears twice`},
		{"a short key is refused", "k1:" + base64.StdEncoding.EncodeToString(raw[:16]), nil, "16 bytes; want 32"},
		{"a key that is not base64 is refused", "k1:not*base64", nil, "not base64"},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			k, err := seal.Parse(tc.ring)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse error = %v, want one saying %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(raw[:16])) {
					t.Fatalf("Parse error %q shows key material", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := strings.Join(k.IDs(), ","); got != strings.Join(tc.wantIDs, ",") || k.Current() != tc.wantIDs[0] {
				t.Fatalf("IDs = %s, Current = %s; want %v", got, k.Current(), tc.wantIDs)
			}
		})
	}
}

func TestSealAndOpen(t *testing.T) {
	old := mustParse(t, key("k1", 'a'))
	ring := mustParse(t, key("k2", 'b')+","+key("k1", 'a'))
	other := mustParse(t, key("k1", 'z'))
	sealedByOld, err := old.SealString("customer_links.customer_bsb", "062000")
	if err != nil {
		t.Fatal(err)
	}
	sealedByRing, err := ring.SealString("customer_links.customer_bsb", "062000")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		rule    string
		ring    *seal.Keyring
		aad     string
		value   string
		want    string
		wantErr string
	}{
		{"a value opens with the ring that sealed it", ring, "customer_links.customer_bsb", sealedByRing, "062000", ""},
		{"a value sealed with an earlier key opens with a ring that has it", ring, "customer_links.customer_bsb", sealedByOld, "062000", ""},
		{"a plaintext reads as it is", ring, "customer_links.customer_bsb", "062000", "062000", ""},
		{"a plaintext that looks like a prefix reads as it is", ring, "customer_links.customer_name", "v1.Jane.Citizen", "v1.Jane.Citizen", ""},
		{"the nil ring reads plaintext", nil, "customer_links.customer_bsb", "062000", "062000", ""},
		{"the empty string stays empty", ring, "customer_links.customer_bsb", "", "", ""},
		{"a value sealed with a key the ring lacks is an error", old, "customer_links.customer_bsb", sealedByRing, "", `key "k2"`},
		{"a key of the same id but other material is an error", other, "customer_links.customer_bsb", sealedByOld, "", "is not the key it was sealed with"},
		{"a value moved to another column is an error", ring, "customer_links.customer_account_number", sealedByRing, "", "altered"},
		{"an altered value is an error", ring, "customer_links.customer_bsb", flip(sealedByRing), "", "altered"},
		{"the nil ring cannot open a sealed value", nil, "customer_links.customer_bsb", sealedByRing, "", seal.ErrNoKey.Error()},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			got, err := tc.ring.OpenString(tc.aad, tc.value)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open = %q, %v; want an error saying %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Open = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// flip changes a character of a sealed value's payload (one of the tag's, away from the padding
// bits of the last) to another of base64url's.
func flip(v string) string {
	i := len(v) - 5
	c := byte('A')
	if v[i] == c {
		c = 'B'
	}
	return v[:i] + string(c) + v[i+1:]
}

func TestSealedValuesNameTheirKeyAndHideThePlaintext(t *testing.T) {
	ring := mustParse(t, key("k2", 'b')+","+key("k1", 'a'))
	a, err := ring.SealString("t.c", "12345678")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ring.SealString("t.c", "12345678")
	if !strings.HasPrefix(a, "v1.k2.") || strings.Contains(a, "12345678") {
		t.Fatalf("sealed value %q: want v1.k2.… without the plaintext", a)
	}
	if a == b {
		t.Fatal("two seals of one plaintext are equal: the nonce is not fresh")
	}
	if _, err := (*seal.Keyring)(nil).SealString("t.c", "x"); !errors.Is(err, seal.ErrNoKey) {
		t.Fatalf("nil ring Seal error = %v, want ErrNoKey", err)
	}
}

func TestStaleAndReseal(t *testing.T) {
	old := mustParse(t, key("k1", 'a'))
	ring := mustParse(t, key("k2", 'b')+","+key("k1", 'a'))
	byOld, _ := old.SealString("t.c", "062000")
	byRing, _ := ring.SealString("t.c", "062000")
	cases := []struct {
		rule  string
		value string
		stale bool
	}{
		{"a plaintext is stale", "062000", true},
		{"a value of an earlier key is stale", byOld, true},
		{"a value of the current key is not", byRing, false},
		{"the empty string is not", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			if got := ring.Stale(tc.value); got != tc.stale {
				t.Fatalf("Stale = %v, want %v", got, tc.stale)
			}
			resealed, err := ring.Reseal("t.c", tc.value)
			if err != nil {
				t.Fatal(err)
			}
			if ring.Stale(resealed) {
				t.Fatalf("Reseal gave %q, still stale", resealed)
			}
			want := "062000"
			if tc.value == "" {
				want = ""
			}
			if got, err := ring.OpenString("t.c", resealed); err != nil || got != want {
				t.Fatalf("resealed value opens to %q, %v; want %q", got, err, want)
			}
		})
	}
}

func TestCreateFileWritesOneKeyOnlyTheOwnerReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pyng.db.key")
	const n = 8
	rings := make([]*seal.Keyring, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { rings[i], errs[i] = seal.CreateFile(path, "sandbox") })
	}
	wg.Wait()
	created := 0
	for i := range n {
		switch {
		case errs[i] == nil:
			created++
		case !errors.Is(errs[i], fs.ErrExist):
			t.Fatalf("CreateFile #%d: %v", i, errs[i])
		}
	}
	if created != 1 {
		t.Fatalf("%d of %d concurrent CreateFile calls created the file, want 1", created, n)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode %v, want 0600", perm)
	}
	read, err := seal.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := read.SealString("t.c", "x")
	for i := range n {
		if errs[i] == nil {
			if got, err := rings[i].OpenString("t.c", sealed); err != nil || got != "x" {
				t.Fatalf("the created ring does not open what the file's ring sealed: %q, %v", got, err)
			}
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("the directory holds %d files, want the key file alone", len(entries))
	}
}

// MAC names a value by a digest keyed by the current key and the purpose: the same value gives
// the same digest, another purpose or another current key an unrelated one, and the nil ring none.
func TestMACIsKeyedByTheCurrentKeyAndThePurpose(t *testing.T) {
	ring := mustParse(t, key("k1", 'a')+","+key("k0", 'b'))
	mac := func(k *seal.Keyring, purpose, data string) string {
		t.Helper()
		d, err := k.MAC(purpose, []byte(data))
		if err != nil {
			t.Fatalf("MAC: %v", err)
		}
		if len(d) != 32 {
			t.Fatalf("MAC is %d bytes, want 32", len(d))
		}
		return string(d)
	}
	d := mac(ring, "emails.address", "jane@example.com")
	if again := mac(mustParse(t, key("k1", 'a')), "emails.address", "jane@example.com"); again != d {
		t.Error("the same current key, purpose and value give another digest")
	}
	if mac(ring, "emails.address", "john@example.com") == d {
		t.Error("another value gives the same digest")
	}
	if mac(ring, "other.purpose", "jane@example.com") == d {
		t.Error("another purpose gives the same digest")
	}
	if mac(mustParse(t, key("k0", 'b')+","+key("k1", 'a')), "emails.address", "jane@example.com") == d {
		t.Error("another current key gives the same digest")
	}
	if strings.Contains(d, "jane") {
		t.Error("the digest holds the value")
	}
	var none *seal.Keyring
	if _, err := none.MAC("emails.address", []byte("jane@example.com")); !errors.Is(err, seal.ErrNoKey) {
		t.Errorf("the nil ring's MAC: %v, want ErrNoKey", err)
	}
}
