package aba_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pyng/receivables/rail/becs/aba"
)

// FuzzRead holds the reader to its promises, whatever the input: it never panics and it names
// where every problem is; a file ReadBlocks accepts is written back, block by block, byte for byte
// as Canonical has the input (its last record ended by a CRLF, without what the reader lets pass),
// and reads back into the same blocks; and Read reads it as its one block, or refuses it for its
// second. Seeds: the golden files, and the committed corpus in testdata/fuzz/FuzzRead.
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
		blocks, err := aba.ReadBlocks(bytes.NewReader(in))
		if err != nil {
			assertPlaced(t, err)
			if _, err := aba.Read(bytes.NewReader(in)); err == nil {
				t.Fatal("Read accepts what ReadBlocks refused")
			}
			return
		}
		out := marshalBlocks(t, blocks)
		// What the reader lets pass is not written back (a byte order mark before the first
		// record, the blank lines and DOS end-of-file mark after the last): Write writes the file
		// Canonical makes of it, by which a returns file is known.
		want := aba.Canonical(bytes.Clone(in))
		if !bytes.Equal(out, want) {
			t.Fatalf("Write(ReadBlocks(in)) differs:\n in %q\nout %q", want, out)
		}
		again, err := aba.ReadBlocks(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("ReadBlocks of Write's output: %v", err)
		}
		if !reflect.DeepEqual(again, blocks) {
			t.Fatalf("ReadBlocks of Write's output: %+v, want %+v", again, blocks)
		}
		one, err := aba.Read(bytes.NewReader(in))
		if len(blocks) > 1 {
			assertPlaced(t, err)
			return
		}
		if err != nil {
			t.Fatalf("Read refuses the file of one block ReadBlocks accepted: %v", err)
		}
		assertSameFile(t, one, blocks[0])
	})
}

// assertPlaced checks that err is a non-empty aba.Errors naming where each problem is.
func assertPlaced(t *testing.T, err error) {
	t.Helper()
	var es aba.Errors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("error %v is not a non-empty aba.Errors", err)
	}
	for _, e := range es {
		if e.Line < 1 || e.Column < 1 || e.Field == "" || e.Problem == "" {
			t.Fatalf("problem without its place: %+v", e)
		}
	}
}
