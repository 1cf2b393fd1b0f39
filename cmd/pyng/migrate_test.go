package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyng/receivables/dbtest"
	"github.com/pyng/receivables/storage"
)

// schemaState is what the migrations leave in a database: goose's applied versions (each
// should be recorded once), River's, and the tables.
type schemaState struct {
	gooseVersions, distinctGooseVersions, riverVersions int
	tables                                              string
}

// readSchema reads the schema state of the database at databaseURL directly, without opening it
// through storage (which would migrate it).
func readSchema(t *testing.T, engine, databaseURL string) schemaState {
	t.Helper()
	tables := `SELECT string_agg(table_name::text, ' ' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = current_schema()`
	if engine == storage.EngineSQLite {
		tables = `SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name)`
	}
	db := openDirect(t, engine, databaseURL)
	defer db.Close()
	var s schemaState
	for _, q := range []struct {
		query string
		dest  []any
	}{
		{`SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`,
			[]any{&s.gooseVersions, &s.distinctGooseVersions}},
		{`SELECT count(*) FROM river_migration`, []any{&s.riverVersions}},
		{tables, []any{&s.tables}},
	} {
		if err := db.QueryRow(q.query).Scan(q.dest...); err != nil {
			t.Fatalf("%s: %v", q.query, err)
		}
	}
	return s
}

// execSQL runs one statement on the database at databaseURL directly.
func execSQL(t *testing.T, engine, databaseURL, statement string) {
	t.Helper()
	db := openDirect(t, engine, databaseURL)
	defer db.Close()
	if _, err := db.Exec(statement); err != nil {
		t.Fatalf("%s: %v", statement, err)
	}
}

// openDirect opens the database at databaseURL with database/sql, bypassing storage.Open (which
// would migrate it).
func openDirect(t *testing.T, engine, databaseURL string) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", databaseURL
	if engine == storage.EngineSQLite {
		path, err := storage.SQLitePath(databaseURL)
		if err != nil {
			t.Fatal(err)
		}
		driver, dsn = "sqlite", path
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// migrationFiles counts the engine's migration files in the source tree.
func migrationFiles(t *testing.T, engine string) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("..", "..", engine, "migrations"))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestMigrateAppliesEveryMigrationOnceAndIsIdempotent(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			// An empty database: dbtest's SQLite databases come migrated already.
			databaseURL := "sqlite:" + filepath.Join(t.TempDir(), "pyng.db")
			if engine == storage.EnginePostgres {
				databaseURL = dbtest.URL(t, engine)
			}
			var first schemaState
			for run := range 2 {
				code, out, errOut := runPyng(t, "migrate", "-database-url="+databaseURL)
				if code != 0 || errOut != "" {
					t.Fatalf("migrate #%d: exit %d, stderr %q; want 0 and nothing on stderr", run+1, code, errOut)
				}
				applied := appliedOf(t, out)
				got := readSchema(t, engine, databaseURL)
				if run == 0 {
					first = got
					if want := migrationFiles(t, engine); got.gooseVersions != want || got.distinctGooseVersions != want {
						t.Fatalf("goose recorded %d versions (%d distinct), want each of the %d migrations once",
							got.gooseVersions, got.distinctGooseVersions, want)
					}
					for _, table := range []string{"batch_rows", "batches", "customer_links", "river_job", "sandbox_goose_version", "sandbox_ledger", "signing_keys"} {
						if !strings.Contains(" "+got.tables+" ", " "+table+" ") {
							t.Errorf("table %s missing after migrate: %s", table, got.tables)
						}
					}
					if got.riverVersions == 0 {
						t.Error("River's migrations were not applied")
					}
					// It printed each migration it applied: every one, the first time.
					ledger, err := os.ReadDir(filepath.Join("..", "..", "rail", "sandbox", "migrations", engine))
					if err != nil {
						t.Fatal(err)
					}
					for component, want := range map[string]int{"schema": migrationFiles(t, engine), "river": got.riverVersions, "sandbox_goose_version": len(ledger)} {
						if n := applied[component]; n != want {
							t.Errorf("migrate printed %d migrations of %s, want %d: %s", n, component, want, out)
						}
					}
					if !strings.Contains(out, `{"component":"schema","name":"00001_init.sql","version":1}`) {
						t.Errorf("migrate printed %s, want each migration's component, name and version", out)
					}
				} else {
					if got != first {
						t.Fatalf("migrate again changed the schema: %+v, then %+v", first, got)
					}
					if out != `{"applied":[]}`+"\n" {
						t.Errorf("migrate again printed %q, want an empty list", out)
					}
				}
			}

			// A rollback deploys the previous binary on a schema that a newer release migrated
			// further: it finds nothing to do.
			execSQL(t, engine, databaseURL, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, true)`)
			if code, out, errOut := runPyng(t, "migrate", "-database-url="+databaseURL); code != 0 || out != `{"applied":[]}`+"\n" || errOut != "" {
				t.Fatalf("migrate on a schema with a newer version: exit %d, stdout %q, stderr %q; want 0 and nothing applied", code, out, errOut)
			}
		})
	}
}

// appliedOf reads the output of pyng migrate: how many migrations of each component it applied.
// It fails the test on output that is not one JSON object or that names a migration twice.
func appliedOf(t *testing.T, out string) map[string]int {
	t.Helper()
	var printed struct {
		Applied []struct {
			Component, Name string
			Version         int64
		}
	}
	if strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &printed) != nil || printed.Applied == nil {
		t.Fatalf("migrate printed %q, want one JSON object with its applied list", out)
	}
	n := map[string]int{}
	seen := map[string]bool{}
	for _, m := range printed.Applied {
		key := fmt.Sprintf("%s %d", m.Component, m.Version)
		if seen[key] || m.Name == "" {
			t.Errorf("migrate printed %s (%q) twice or without a name: %s", key, m.Name, out)
		}
		seen[key] = true
		n[m.Component]++
	}
	return n
}

// TestMigrateAndServeStartingTogether starts several "pyng migrate" and "pyng serve" processes at
// once on one empty PostgreSQL database, as a deploy step racing new replicas would: every one
// succeeds, each migration is applied once, and one demo organisation is created.
func TestMigrateAndServeStartingTogether(t *testing.T) {
	t.Parallel()
	databaseURL := dbtest.URL(t, storage.EnginePostgres)
	type migration struct {
		cmd *exec.Cmd
		out *bytes.Buffer
	}
	var migrations []migration
	var servers []*process
	for i := range 5 {
		if i%2 == 1 {
			p, _ := launchServer(t, pyngBinary, databaseURL)
			servers = append(servers, p)
			continue
		}
		m := migration{cmd: exec.Command(pyngBinary, "migrate", "-database-url="+databaseURL), out: &bytes.Buffer{}}
		m.cmd.Stdout, m.cmd.Stderr = m.out, m.out // stderr stays empty, or appliedOf fails
		if err := m.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		migrations = append(migrations, m)
	}
	for i, m := range migrations {
		if err := m.cmd.Wait(); err != nil {
			t.Errorf("migrate #%d: %v, output %q", i+1, err, m.out)
		}
	}
	// Each migration was applied once: no two processes report the same one.
	applied := map[string]int{}
	for _, m := range migrations {
		appliedOf(t, m.out.String()) // one JSON object, nothing on stderr
		var printed struct {
			Applied []struct {
				Component string
				Version   int64
			}
		}
		_ = json.Unmarshal(m.out.Bytes(), &printed)
		for _, a := range printed.Applied {
			applied[fmt.Sprintf("%s %d", a.Component, a.Version)]++
		}
	}
	for m, n := range applied {
		if n > 1 {
			t.Errorf("migration %s reported applied by %d processes", m, n)
		}
	}
	for _, p := range servers {
		p.waitReady(t)
	}
	got := readSchema(t, storage.EnginePostgres, databaseURL)
	if want := migrationFiles(t, storage.EnginePostgres); got.gooseVersions != want || got.distinctGooseVersions != want {
		t.Errorf("goose recorded %d versions (%d distinct), want each of the %d migrations once",
			got.gooseVersions, got.distinctGooseVersions, want)
	}
	db := openDirect(t, storage.EnginePostgres, databaseURL)
	defer db.Close()
	if got.riverVersions == 0 {
		t.Error("River's migrations were not applied")
	}
	var organisations int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM organisations`).Scan(&organisations); err != nil {
		t.Fatal(err)
	}
	if organisations != 1 {
		t.Errorf("%d organisations after two sandbox servers started on an empty database, want the one demo", organisations)
	}
}

// A database (on PostgreSQL, the schema search_path names) that holds another application's
// tables and none of pyng's migrations is refused by migrate and serve, and left as it was:
// pyng's tables would have gone in beside the others, or failed half-way on a name they share.
func TestADatabaseOfAnotherApplicationIsRefused(t *testing.T) {
	dbtest.OnEachEngine(t, func(t *testing.T, engine string) {
		databaseURL := dbtest.URL(t, engine)
		if engine == storage.EngineSQLite { // dbtest's SQLite files come migrated
			databaseURL = "sqlite:" + filepath.Join(t.TempDir(), "other.db")
		}
		execSQL(t, engine, databaseURL, `CREATE TABLE invoices (id INTEGER PRIMARY KEY)`)
		commands := [][]string{{"migrate", "-database-url=" + databaseURL},
			{"serve", "-database-url=" + databaseURL, "-sandbox=true", "-encryption-key=" + dbtest.KeyRing, "-addr=" + freeAddr(t)}}
		if engine == storage.EngineSQLite { // the sandbox's key file is not made beside it either
			commands = append(commands, []string{"serve", "-database-url=" + databaseURL, "-sandbox=true", "-addr=" + freeAddr(t)})
		}
		for _, command := range commands {
			code, out, errOut := runPyng(t, command...)
			if code != 1 || out != "" || !strings.Contains(errOut, "holds 1 table and no pyng migrations") {
				t.Errorf("pyng %s on another application's database: exit %d, stdout %q, stderr %q; want exit 1 saying so", command[0], code, out, errOut)
			}
		}
		if path, ok := strings.CutPrefix(databaseURL, "sqlite:"); ok {
			if _, err := os.Stat(path + ".key"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a key file was left beside the database refused (%v)", err)
			}
		}
		db := openDirect(t, engine, databaseURL)
		defer db.Close()
		query := `SELECT count(*) FROM sqlite_master WHERE type = 'table'`
		if engine == storage.EnginePostgres {
			query = `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`
		}
		var tables int
		if err := db.QueryRow(query).Scan(&tables); err != nil || tables != 1 {
			t.Errorf("the database holds %d tables (%v) after the refusals; want its one table alone", tables, err)
		}
	})
}

// TestMigrateAndAdminWarnOfAMisspeltVariable runs pyng migrate, as a deploy step would, with its
// database's variable misspelt: it migrates the default database instead, and exits 0, so it
// names the variable it ignored on stderr, as the server's log does; so does an admin command.
func TestMigrateAndAdminWarnOfAMisspeltVariable(t *testing.T) {
	t.Chdir(t.TempDir()) // where the default database, sqlite:pyng.db, is made
	t.Setenv("PYNG_DATABSE_URL", "postgres://db.internal/pyng")
	t.Setenv("PYNG_DATABASE_URL", "") // restored at the end
	os.Unsetenv("PYNG_DATABASE_URL")
	const want = "pyng: warning: the environment sets PYNG_ variables that are no setting (misspelt?); they are ignored: PYNG_DATABSE_URL\n"
	for _, command := range [][]string{{"migrate"}, {"admin", "org", "create", "--name", "Acme"}} {
		code, out, errOut := runPyng(t, command...)
		if code != 0 || out == "" || errOut != want {
			t.Errorf("pyng %s with PYNG_DATABSE_URL: exit %d, stdout %q, stderr %q; want exit 0 and the warning %q",
				strings.Join(command, " "), code, out, errOut, want)
		}
	}
}
