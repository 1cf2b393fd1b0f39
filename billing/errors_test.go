package billing_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pyng/receivables/billing"
)

// Codes lists every constant of type Code that the package declares, so that a test iterating it
// sees a new code.
func TestCodesListsEveryCodeConstant(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "Code" {
					for _, n := range vs.Names {
						declared = append(declared, n.Name)
					}
				}
			}
		}
	}
	if len(declared) == 0 {
		t.Fatal("found no Code constant: the test reads the wrong files")
	}
	codes := billing.Codes()
	if len(codes) != len(declared) {
		t.Errorf("Codes has %d codes; the package declares %d Code constants: %v", len(codes), len(declared), declared)
	}
	seen := map[billing.Code]bool{}
	for _, c := range codes {
		if seen[c] {
			t.Errorf("Codes lists %s twice", c)
		}
		seen[c] = true
		if !strings.HasPrefix(string(c), "urn:pyng:platform:billing:error:") {
			t.Errorf("%s is not under the common prefix", c)
		}
	}
	if !slices.Contains(codes, billing.CodeInternal) {
		t.Error("Codes lacks internal")
	}
}
