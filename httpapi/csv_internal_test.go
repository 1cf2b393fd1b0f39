package httpapi

import "testing"

func TestSpreadsheetSafe(t *testing.T) {
	cases := map[string]string{
		"INV-1":  "INV-1",
		"-1+2":   "'-1+2",
		"-A1":    "'-A1",
		"_x":     "_x",
		"2026-1": "2026-1",
	}
	for in, want := range cases {
		if got := spreadsheetSafe(in); got != want {
			t.Errorf("spreadsheetSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
