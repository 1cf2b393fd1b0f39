package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// Every statement the store runs often is prepared once, at Open: modernc.org/sqlite compiles a
// statement's text at each execution otherwise, which was a third of the time of recording a
// round of webhook deliveries (statements with a join over JSON) on the one connection. sqlc
// prepares those of queries.sql (emit_prepared_queries); handWritten are the others. None can be
// prepared later, on first use: a transaction may hold the pool's one connection, which preparing
// on the pool would wait for.

// handWritten are the statements written in Go (sqlc cannot parse them) that Open prepares: the
// inserts of events are prepared for one event (an invitation's) and for a full chunk.
var handWritten = []string{markInProgress, returnRows, recordOutcomes, insertAttempts, updateDeliveries, jobsWaiting,
	insertEvents(1), insertEvents(eventsPerInsert)}

// preparedStatements are statements prepared on the pool, by their text.
type preparedStatements map[string]*sql.Stmt

func prepare(ctx context.Context, db *sql.DB, queries []string) (preparedStatements, error) {
	p := make(preparedStatements, len(queries))
	for _, q := range queries {
		s, err := db.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("prepare %.40q: %w", q, err)
		}
		p[q] = s
	}
	return p, nil
}

// statement is query's prepared statement, in the executor's transaction if it has one; nil when
// query was not prepared.
func (e executor) statement(ctx context.Context, query string) *sql.Stmt {
	s := e.prepared[query]
	if s != nil && e.tx != nil {
		s = e.tx.StmtContext(ctx, s) // the connection's prepared statement, not a new one
	}
	return s
}

// exec runs query through its prepared statement, or compiled for this once when it has none.
func (e executor) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := e.statement(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return e.db.ExecContext(ctx, query, args...)
}

// query is exec for a statement that returns rows.
func (e executor) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := e.statement(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return e.db.QueryContext(ctx, query, args...)
}
