package dbtest

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pyng/receivables/billing"
)

// A database named after a process this machine does not run, but which another test binary is
// connected to (one in another PID namespace, or on another machine reaching the server through a
// tunnel to localhost), is left alone: only the databases no one is connected to are dropped.
func TestTheDatabaseOfABinaryStillConnectedIsNotDropped(t *testing.T) {
	ctx := context.Background()
	pool, base, err := adminPool()
	if err != nil {
		t.Fatal(err)
	}
	ended := exec.Command("true")
	if err := ended.Run(); err != nil {
		t.Fatal(err)
	}
	if running(ended.Process.Pid) {
		t.Skip("the ended process's id was taken again")
	}
	name := fmt.Sprintf("%s%d_%s", testDatabasePrefix, ended.Process.Pid, billing.RandomToken(6))
	if _, err := pool.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	u := *base
	u.Path = "/" + name
	other, err := pgx.Connect(ctx, u.String()) // the other binary's connection
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)

	dropEndedBinariesDatabases(ctx, pool, base)

	if err := other.Ping(ctx); err != nil {
		t.Fatalf("the other binary's connection was cut: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the database in use: %d of it (%v)", n, err)
	}
}
