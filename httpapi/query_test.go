package httpapi

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyng/receivables/billing"
)

// Cursors as this server writes them, and others of the same page that it never writes.
var (
	linkCursor  = encodeCursor("ACME-001")
	batchCursor = encodeBatchCursor(billing.BatchFilter{AfterSubmittedAt: time.UnixMilli(1764500000000), AfterID: "bat_1"})
)

func TestOnlyTheCursorsThisServerWritesAreAccepted(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	otherBits := func(cursor string) string { // the same bytes, with the last character's unused bits set
		other := cursor[:len(cursor)-1] + string(alphabet[strings.IndexByte(alphabet, cursor[len(cursor)-1])+1])
		a, errA := base64.RawURLEncoding.DecodeString(cursor)
		b, errB := base64.RawURLEncoding.DecodeString(other)
		if errA != nil || errB != nil || string(a) != string(b) {
			t.Fatalf("%s and %s do not decode to the same bytes", cursor, other)
		}
		return other
	}
	tests := []struct {
		name   string
		query  string
		accept bool
	}{
		{"a customers cursor as written", "cursor=" + linkCursor, true},
		{"a customers cursor with other trailing bits", "cursor=" + otherBits(linkCursor), false},
		{"a customers cursor with a line break", "cursor=" + url.QueryEscape(linkCursor[:4]+"\n"+linkCursor[4:]), false},
		{"a batches cursor as written", "cursor=" + batchCursor, true},
		{"a batches cursor with other trailing bits", "cursor=" + otherBits(batchCursor), false},
		{"a batches cursor with a line break", "cursor=" + url.QueryEscape(batchCursor[:4]+"\r\n"+batchCursor[4:]), false},
		{"a batches cursor with a leading zero", "cursor=" + cursorOf("01764500000000.bat_1"), false},
		{"a batches cursor with a plus sign", "cursor=" + cursorOf("+1764500000000.bat_1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			query, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			var got error
			if strings.HasPrefix(tt.name, "a customers") {
				_, got = linkFilterOf(query)
			} else {
				_, got = batchFilterOf(query)
			}
			if (got == nil) != tt.accept {
				t.Errorf("?%s: error %v, want accepted %v", tt.query, got, tt.accept)
			}
		})
	}
}

func cursorOf(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// FuzzListQuery reads query strings as the lists and GET one batch do, after checkQuery let them
// through: whatever the query, a refusal is one problem of a query parameter, and what is
// accepted is exactly what was given: a parameter given once, a limit in range, a state by its
// name, a cursor this server writes.
func FuzzListQuery(f *testing.F) {
	for _, seed := range []string{
		"", "limit=1", "limit=100", "limit=0", "limit=101", "limit=+5", "limit=05", "limit=1&limit=1", "limit=",
		"state=linked", "state=LINKED", "state=linked&state=linked", "rowState=failed", "rowState=",
		"cursor=" + linkCursor, "cursor=" + batchCursor, "cursor=", "cursor=!!!", "cursor=" + linkCursor + "&limit=2&state=invited",
		"cursor=" + cursorOf("9223372036854775807.bat_1"), "cursor=" + cursorOf("-1.bat_1"), "cursor=" + cursorOf("1."),
		"a;b=1&limit=2", "limit=%zz", "%3Bcursor=x", strings.Repeat("&", 10001) + "limit=0",
	} {
		f.Add(seed)
	}
	params := []string{"cursor", "limit", "state", "rowState"}
	f.Fuzz(func(t *testing.T, raw string) {
		if checkQuery(raw, params) != nil {
			return // refused before the handlers read it (gate), as a repeated parameter is
		}
		query, _ := url.ParseQuery(raw) // as r.URL.Query() reads it
		links, linksErr := linkFilterOf(query)
		batches, batchesErr := batchFilterOf(query)
		rowState, rowStateErr := rowStateOf(query)
		for _, err := range []error{linksErr, batchesErr, rowStateErr} {
			if err == nil {
				continue
			}
			errs := billing.AsErrors(err)
			if len(errs) != 1 || statusOf[errs[0].Code] != http.StatusBadRequest || !slices.Contains(params, errs[0].Target) {
				t.Fatalf("?%s refused with %v, want one 400 problem of a query parameter", raw, err)
			}
		}
		given := func(name string) (string, bool) {
			v, ok := query[name]
			if ok && len(v) != 1 {
				t.Fatalf("?%s: %s given %d times was accepted", raw, name, len(v))
			}
			if !ok {
				return "", false
			}
			return v[0], true
		}
		checkLimit := func(limit int) {
			v, ok := given("limit")
			n, err := strconv.Atoi(v)
			if limit < 1 || limit > billing.MaxPageSize || (ok && (err != nil || n != limit)) || (!ok && limit != defaultPageSize) {
				t.Fatalf("?%s read limit %d", raw, limit)
			}
		}
		if linksErr == nil {
			checkLimit(links.Limit)
			if c, ok := given("cursor"); (ok && encodeCursor(links.After) != c) || (!ok && links.After != "") {
				t.Fatalf("?%s read the cursor as after %q, which is written %q", raw, links.After, encodeCursor(links.After))
			}
			if s, ok := given("state"); string(links.State) != s || (ok && !links.State.Valid()) {
				t.Fatalf("?%s read state %q", raw, links.State)
			}
		}
		if batchesErr == nil {
			checkLimit(batches.Limit)
			if c, ok := given("cursor"); (ok && encodeBatchCursor(batches) != c) || (!ok && batches.AfterID != "") {
				t.Fatalf("?%s read the cursor as %+v, which is written %q", raw, batches, encodeBatchCursor(batches))
			}
		}
		if rowStateErr == nil {
			if s, ok := given("rowState"); string(rowState) != s || (ok && !rowState.Valid()) {
				t.Fatalf("?%s read rowState %q", raw, rowState)
			}
		}
	})
}
