package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pyng/receivables/client"
)

// emit writes v as one line of JSON, or as the table writes it.
func (e *env) emit(v any, table func(w io.Writer)) error {
	if e.json {
		return writeJSON(e.stdout, v)
	}
	tw := newTable(e.stdout)
	table(tw)
	return tw.Flush()
}

// newTable writes aligned columns from tab-separated cells.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// writeJSON writes v on one line; an event as the server sent it (byte for byte the body of its
// webhooks), since encoding a client.Event again would drop the members the client does not know.
func writeJSON(w io.Writer, v any) error {
	if ev, ok := v.(client.Event); ok && ev.Raw != nil {
		_, err := fmt.Fprintf(w, "%s\n", ev.Raw)
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

// table writes a tab-separated line of a table.
func row(w io.Writer, cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(w, strings.Join(s, "\t"))
}

// dollars writes an amount in cents as dollars and cents: 12000 is 120.00.
func dollars(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return sign + strconv.FormatInt(cents/100, 10) + "." + fmt.Sprintf("%02d", cents%100)
}

// when writes an instant for a person, in the local time zone; "-" when absent.
func when(t client.Timestamp) string {
	if t == 0 {
		return "-"
	}
	return t.Time().Local().Format("2006-01-02 15:04:05")
}

// rowCount says how many rows: "1 row", "3 rows".
func rowCount(n int) string {
	if n == 1 {
		return "1 row"
	}
	return strconv.Itoa(n) + " rows"
}

// orDash is s, or "-" when empty.
func orDash[S ~string](s S) string {
	if s == "" {
		return "-"
	}
	return string(s)
}

// durationFlag is a flag.Value of a time.Duration.
type durationFlag time.Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }
func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%q is not a positive duration such as 2s", s)
	}
	*d = durationFlag(v)
	return nil
}
