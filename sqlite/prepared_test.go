package sqlite

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestHandWrittenStatementsArePrepared reads this package's code: every statement the executor
// runs by the name of a constant goes through exec or query and is in handWritten, so that Open
// prepares it; one left out would be compiled again at each execution, and nothing else would say
// so.
func TestHandWrittenStatementsArePrepared(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	prepared := map[string]bool{}
	for _, q := range handWritten {
		prepared[q] = true
	}
	consts := map[string]string{}    // the package's string constants, by name
	runs := map[string]token.Pos{}   // the names exec and query run
	direct := map[string]token.Pos{} // the names run on e.db without them
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if i < len(n.Values) {
						if lit, ok := n.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[name.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || len(n.Args) < 2 {
					return true
				}
				switch sel.Sel.Name {
				case "ExecContext", "QueryContext", "QueryRowContext":
					if x, ok := sel.X.(*ast.SelectorExpr); ok && x.Sel.Name == "db" {
						if id, ok := n.Args[1].(*ast.Ident); ok {
							direct[id.Name] = n.Pos()
						}
					}
				case "exec", "query":
					if id, ok := n.Args[1].(*ast.Ident); ok {
						runs[id.Name] = n.Pos()
					}
				}
			}
			return true
		})
	}
	if len(runs) == 0 {
		t.Fatal("found no statement run through exec or query: the test no longer reads the code it means to")
	}
	for name, pos := range direct {
		if _, ok := consts[name]; ok {
			t.Errorf("%s: %s is run on e.db: run it through e.exec or e.query", fset.Position(pos), name)
		}
	}
	for name, pos := range runs {
		q, ok := consts[name]
		if !ok {
			t.Errorf("%s: %s is not a string constant of the package", fset.Position(pos), name)
			continue
		}
		if !prepared[q] {
			t.Errorf("%s: %s is run but not in handWritten, so Open does not prepare it", fset.Position(pos), name)
		}
	}
}
