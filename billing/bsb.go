package billing

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Branch is one entry of APCA's BSB directory: a BSB, the financial institution's mnemonic (CBA,
// WBC, …), the branch's name and address, and its payment flags (P paper, E electronic, H high
// value).
type Branch struct {
	BSB      string // six digits, no separator
	Mnemonic string
	Name     string
	Address  string
	Suburb   string
	State    string
	Postcode string
	Payments string
}

// TakesDirectDebits reports whether the branch accepts direct-entry (BECS) payments: its payment
// flags have E. A branch whose flags say it does not, such as one that takes only cheques (P),
// returns every debit sent to it. A branch without flags is not refused: a directory imported
// without them must not turn every customer away.
func (b Branch) TakesDirectDebits() bool {
	return strings.TrimSpace(b.Payments) == "" || strings.Contains(b.Payments, "E")
}

// BranchStore keeps the BSB directory the operator imports. Store includes it.
type BranchStore interface {
	// ReplaceBranches replaces the whole directory with branches, in one transaction.
	ReplaceBranches(ctx context.Context, branches []Branch) error
	// GetBranch returns the branch of a BSB, ErrNotFound when the directory has none (or is
	// empty: see HasBranches).
	GetBranch(ctx context.Context, bsb string) (Branch, error)
	// HasBranches reports whether a directory was imported.
	HasBranches(ctx context.Context) (bool, error)
}

// branchColumns is how many columns a line of APCA's BSB directory has.
const branchColumns = 8

// ReadBranches reads APCA's BSB directory, the CSV file APCA publishes: one branch a line, as
// "BSB","mnemonic","branch name","address","suburb","state","postcode","payment flags", with the
// BSB written 062-000, after a byte order mark or none. A first line that does not start with a
// BSB is taken as a heading. Every line must be whole and its text printable UTF-8; a BSB given
// twice is an error.
func ReadBranches(r io.Reader) ([]Branch, error) {
	// A spreadsheet's "CSV UTF-8" begins with a byte order mark, which goes before the CSV reader
	// sees the first field (quoted, or a BSB).
	br := bufio.NewReader(r)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = branchColumns
	var out []Branch
	seen := map[string]int{}
	for first := true; ; first = false {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("BSB directory: %w", err)
		}
		line, _ := cr.FieldPos(0)
		bsb := stripSeparators(rec[0])
		if first && !(allDigits(bsb) && len(bsb) == 6) {
			continue // a heading
		}
		if !allDigits(bsb) || len(bsb) != 6 {
			return nil, fmt.Errorf("BSB directory, line %d: %q is not a BSB of 6 digits", line, rec[0])
		}
		if prev, ok := seen[bsb]; ok {
			return nil, fmt.Errorf("BSB directory, line %d: BSB %s is also on line %d", line, rec[0], prev)
		}
		seen[bsb] = line
		for i, f := range rec {
			if !PlainText(f) {
				return nil, fmt.Errorf("BSB directory, line %d, column %d: %q holds a control character or is not UTF-8", line, i+1, f)
			}
			rec[i] = strings.TrimSpace(f)
		}
		out = append(out, Branch{BSB: bsb, Mnemonic: rec[1], Name: rec[2], Address: rec[3], Suburb: rec[4],
			State: rec[5], Postcode: rec[6], Payments: rec[7]})
	}
	if len(out) == 0 {
		return nil, errors.New("BSB directory: the file lists no branch")
	}
	return out, nil
}

// ImportBranches replaces the BSB directory with the branches of APCA's file (operators only)
// and returns how many it holds. Importing the same file again changes nothing.
func (s *Service) ImportBranches(ctx context.Context, r io.Reader) (int, error) {
	branches, err := ReadBranches(r)
	if err != nil {
		return 0, err
	}
	if err := s.store.ReplaceBranches(ctx, branches); err != nil {
		return 0, fmt.Errorf("replace BSB directory: %w", err)
	}
	return len(branches), nil
}

// Branch returns the branch of a BSB (six digits) from the directory. known is false when the
// directory has no such BSB; loaded is false when no directory was imported (and then no BSB is
// known).
func (s *Service) Branch(ctx context.Context, bsb string) (b Branch, known, loaded bool, err error) {
	b, err = s.store.GetBranch(ctx, bsb)
	if err == nil {
		return b, true, true, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Branch{}, false, false, fmt.Errorf("get branch: %w", err)
	}
	loaded, err = s.store.HasBranches(ctx)
	if err != nil {
		return Branch{}, false, false, fmt.Errorf("BSB directory: %w", err)
	}
	return Branch{}, false, loaded, nil
}

// PlainText reports whether s is text a person could have typed on one line: valid UTF-8
// without control characters (NUL, tabs, line breaks, escapes). What a customer or a partner
// sends is checked with it before it is stored, so that both engines keep the same text (a
// PostgreSQL text column cannot hold NUL at all).
func PlainText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}
