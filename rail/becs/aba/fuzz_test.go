package aba_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pyng/receivables/rail/becs/aba"
)

// FuzzRead holds the reader to two promises, whatever the input: it never panics and it names
// where every problem is; and a file it accepts is written back by Write byte for byte as
// Canonical has the input (its last record ended by a CRLF, without what Read lets pass), and
// reads back into the same File. Seeds: the golden files, and the committed corpus in
// testdata/fuzz/FuzzRead.
func FuzzRead(f *testing.F) {
	names, _ := filepath.Glob("testdata/*.aba")
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		file, err := aba.Read(bytes.NewReader(in))
		if err != nil {
			var es aba.Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("Read error %v is not a non-empty aba.Errors", err)
			}
			for _, e := range es {
				if e.Line < 1 || e.Column < 1 || e.Field == "" || e.Problem == "" {
					t.Fatalf("problem without its place: %+v", e)
				}
			}
			return
		}
		out, err := file.MarshalText()
		if err != nil {
			t.Fatalf("Write refuses what Read accepted: %v", err)
		}
		// What Read lets pass is not written back (a byte order mark before the first record, the
		// blank lines and DOS end-of-file mark after the last): Write writes the file Canonical
		// makes of it, by which a returns file is known.
		want := aba.Canonical(bytes.Clone(in))
		if !bytes.Equal(out, want) {
			t.Fatalf("Write(Read(in)) differs:\n in %q\nout %q", want, out)
		}
		again, err := aba.Read(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("Read of Write's output: %v", err)
		}
		assertSameFile(t, again, file)
	})
}
