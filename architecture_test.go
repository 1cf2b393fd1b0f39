// The import rules of docs/architecture.md, checked: a package that starts to reach where it
// should not fails this test rather than a review.
package receivables_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/pyng/receivables/"

// mayImport lists, per package, the packages of this module its code may import. Test helpers
// (dbtest, storetest, apptest, clocktest) and commands (app, cmd/...) wire things together and are
// free to import anything.
var mayImport = map[string][]string{
	"billing":         {"rail", "webhook", "ddr"},
	"rail":            {},
	"rail/sandbox":    {"rail", "storage", "seal"},
	"rail/becs":       {"rail", "rail/becs/aba", "storage", "seal"},
	"rail/becs/aba":   {},
	"seal":            {},
	"storage/driver":  {"billing", "ddr"},
	"sqlite":          {"billing", "ddr", "storage/driver", "sqlite/internal/dbsqlc"},
	"postgres":        {"billing", "ddr", "storage/driver", "postgres/internal/dbsqlc"},
	"storage":         {"billing", "ddr", "storage/driver", "sqlite", "postgres", "seal", "webhook", "internal/redact"},
	"jobs":            {"billing", "webhook/deliver"},
	"token":           {"billing"},
	"httpapi":         {"billing", "token", "api"},
	"web":             {"billing", "token", "ddr", "rail/becs/aba"},
	"ddr":             {},
	"email":           {"billing", "token", "ddr", "internal/redact"},
	"webhook":         {},
	"client":          {},
	"internal/redact": {},
	"webhook/deliver": {"webhook"},
	// The partner's CLI reaches the API only through the client, as a partner's program would.
	"cmd/pyng-partner": {"client", "webhook"},
}

// knowsNothingOf lists, per package, the outside packages (by prefix) it must not import: the
// domain and the rails' contract know nothing of HTTP, SQL or the job queue.
var knowsNothingOf = map[string][]string{
	"billing": {"net/http", "database/sql", "github.com/jackc/", "modernc.org/", "github.com/riverqueue/"},
	"rail":    {"net/http", "database/sql", "github.com/jackc/", "modernc.org/", "github.com/riverqueue/"},
	"webhook": {"net/http", "database/sql", "github.com/riverqueue/"},
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		pkg, imports := strings.TrimPrefix(fields[0], module), fields[1:]
		seen[pkg] = true
		allowed, ruled := mayImport[pkg]
		for _, imp := range imports {
			own, ok := strings.CutPrefix(imp, module)
			if ok && ruled && !slices.Contains(allowed, own) {
				t.Errorf("%s imports %s; it may import only %v of this module", pkg, own, allowed)
			}
			for _, forbidden := range knowsNothingOf[pkg] {
				if strings.HasPrefix(imp, forbidden) {
					t.Errorf("%s imports %s, which it must know nothing of", pkg, imp)
				}
			}
		}
	}
	for pkg := range mayImport {
		if !seen[pkg] {
			t.Errorf("the rules name %s, which is not a package of the module any more", pkg)
		}
	}
}
