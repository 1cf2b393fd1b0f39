package main

import (
	"context"
	"strings"
	"testing"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/dbtest"
)

// TestAdminBSBImport loads APCA's BSB directory with the built binary on each engine: an import
// replaces the directory, importing the same file again changes nothing, and a file that does not
// read leaves the directory as it was.
func TestAdminBSBImport(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		url := databaseURL(t, engine)
		env := []string{"PYNG_DATABASE_URL=" + url}
		pyngOne(t, env, "admin", "org", "create", "--name", "Acme") // creates the database
		for range 2 {
			if got := pyngOne(t, env, "admin", "bsb", "import", "testdata/bsb.csv"); got["branches"] != float64(4) {
				t.Fatalf("bsb import printed %v, want 4 branches", got)
			}
		}
		code, _, errOut := runBinary(t, env, "admin", "bsb", "import", "testdata/bsb-twice.csv")
		if code == 0 || !strings.Contains(errOut, "BSB 062-000 is also on line 1") {
			t.Errorf("import of a file with a BSB twice: exit %d, %q; want a failure naming the line", code, errOut)
		}
		if code, _, errOut := runBinary(t, env, "admin", "bsb", "import"); code != 2 || !strings.Contains(errOut, "needs a file") {
			t.Errorf("import without a file: exit %d, %q; want a usage error", code, errOut)
		}
		if code, out, errOut := runBinary(t, env, "admin", "bsb", "import", "testdata/no-such-file.csv"); code != 2 || out != "" ||
			!strings.Contains(errOut, "testdata/no-such-file.csv") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("import of a file that does not exist: exit %d, %q, %q; want a usage error naming it (exit 2, as becs returns import)", code, out, errOut)
		}

		db := dbtest.OpenURL(t, url)
		b, err := db.GetBranch(context.Background(), "733000")
		want := billing.Branch{BSB: "733000", Mnemonic: "WBC", Name: "Sydney", Address: "275 Kent Street", Suburb: "Sydney", State: "NSW", Postcode: "2000", Payments: "PEH"}
		if err != nil || b != want {
			t.Errorf("GetBranch after the imports = %+v, %v; want %+v", b, err, want)
		}
	})
}
