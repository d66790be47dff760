// Package store keeps the emulator's state in an embedded SQLite database
// (pure Go, modernc.org/sqlite) so that everything survives a restart.
//
// Records are JSON documents with the few columns lookups need beside them:
// the emulator answers with whole documents, and the platform's own shapes
// change more often than its lookups do.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the database's file name inside the data directory.
const FileName = "emulator.db"

// Errors callers branch on.
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: conflict")
)

const schema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (
  domain TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clients (
  client_id TEXT PRIMARY KEY, domain TEXT NOT NULL, doc TEXT NOT NULL, seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS client_grants (
  id TEXT PRIMARY KEY, domain TEXT NOT NULL, client_id TEXT NOT NULL, audience TEXT NOT NULL,
  subject_type TEXT NOT NULL, seq INTEGER NOT NULL, doc TEXT NOT NULL,
  UNIQUE(domain, client_id, audience, subject_type));
CREATE INDEX IF NOT EXISTS client_grants_by_seq ON client_grants(domain, seq);
CREATE TABLE IF NOT EXISTS connections (
  id TEXT PRIMARY KEY, domain TEXT NOT NULL, name TEXT NOT NULL, strategy TEXT NOT NULL,
  seq INTEGER NOT NULL, doc TEXT NOT NULL, UNIQUE(domain, name));
CREATE INDEX IF NOT EXISTS connections_by_seq ON connections(domain, seq);
CREATE TABLE IF NOT EXISTS users (
  domain TEXT NOT NULL, user_id TEXT NOT NULL, connection TEXT NOT NULL,
  email TEXT NOT NULL, username TEXT NOT NULL, password_hash TEXT NOT NULL,
  seq INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY(domain, user_id));
CREATE INDEX IF NOT EXISTS users_by_email ON users(domain, email);
CREATE INDEX IF NOT EXISTS users_by_connection ON users(domain, connection, seq);
CREATE TABLE IF NOT EXISTS email_providers (domain TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS email_templates (
  domain TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY(domain, name));
CREATE TABLE IF NOT EXISTS tickets (
  id TEXT PRIMARY KEY, domain TEXT NOT NULL, subject TEXT NOT NULL, seq INTEGER NOT NULL,
  doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tickets_by_subject ON tickets(domain, subject);
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT, domain TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
  id TEXT PRIMARY KEY, domain TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL, doc TEXT NOT NULL,
  UNIQUE(domain, name));
CREATE INDEX IF NOT EXISTS actions_by_seq ON actions(domain, seq);
CREATE TABLE IF NOT EXISTS action_versions (
  id TEXT PRIMARY KEY, domain TEXT NOT NULL, action_id TEXT NOT NULL, number INTEGER NOT NULL, doc TEXT NOT NULL,
  UNIQUE(action_id, number));
CREATE TABLE IF NOT EXISTS action_bindings (
  id TEXT PRIMARY KEY, domain TEXT NOT NULL, trigger_id TEXT NOT NULL, position INTEGER NOT NULL,
  action_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS action_bindings_by_trigger ON action_bindings(domain, trigger_id, position);
CREATE TABLE IF NOT EXISTS seq (n INTEGER NOT NULL);
`

// Store is the database. All access goes through one connection: SQLite
// serialises writers anyway, and one connection rules out SQLITE_BUSY while
// keeping reads fast enough (the emulator serves thousands per second).
type Store struct{ db *sql.DB }

// Open opens (creating if needed) the database at path.
func Open(path string) (*Store, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: schema: %w", err)
	}
	if _, err := db.Exec(`INSERT INTO seq(n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM seq)`); err != nil {
		db.Close()
		return nil, err
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	return &Store{db: db}, nil
}

// migrate brings a database written by an older emulator up to the schema:
// CREATE TABLE IF NOT EXISTS adds new tables but not new columns.
func migrate(db *sql.DB) error {
	for _, stmt := range []string{
		`ALTER TABLE clients ADD COLUMN seq INTEGER NOT NULL DEFAULT 0`,
	} {
		if _, err := db.Exec(stmt); err != nil && !strings.Contains(err.Error(), "duplicate column") {
			return err
		}
	}
	// Clients from before the column get an order, after everything else.
	var unordered int
	if err := db.QueryRow(`SELECT count(*) FROM clients WHERE seq = 0`).Scan(&unordered); err != nil || unordered == 0 {
		return err
	}
	if _, err := db.Exec(`UPDATE clients SET seq = (SELECT n FROM seq) + rowid WHERE seq = 0`); err != nil {
		return err
	}
	_, err := db.Exec(`UPDATE seq SET n = n + (SELECT max(rowid) FROM clients)`)
	return err
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// execer is what both *sql.DB and *sql.Tx offer.
type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// Q runs queries, inside a transaction or not.
type Q struct{ ex execer }

// Q returns a query runner outside any transaction.
func (s *Store) Q() Q { return Q{ex: s.db} }

// Tx runs fn in a transaction, committed when fn returns nil. fn must use
// only the Q it is given: the single connection is held until fn returns.
func (s *Store) Tx(fn func(q Q) error) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	if err := fn(Q{ex: tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

var bg = context.Background()

// NextSeq returns a strictly increasing number, used to order records.
func (q Q) NextSeq() (int64, error) {
	var n int64
	err := q.ex.QueryRowContext(bg, `UPDATE seq SET n = n + 1 RETURNING n`).Scan(&n)
	return n, err
}

// Meta returns a value stored under key.
func (q Q) Meta(key string) ([]byte, error) {
	var v []byte
	err := q.ex.QueryRowContext(bg, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return v, err
}

// PutMeta stores value under key.
func (q Q) PutMeta(key string, value []byte) error {
	_, err := q.ex.ExecContext(bg, `INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

func getDoc(q Q, out any, query string, args ...any) error {
	var doc string
	err := q.ex.QueryRowContext(bg, query, args...).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(doc), out)
}

func listDocs[T any](q Q, query string, args ...any) ([]T, error) {
	rows, err := q.ex.QueryContext(bg, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var v T
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("store: marshal %T: %v", v, err)) // only plain data is stored
	}
	return string(b)
}

func count(q Q, query string, args ...any) (int, error) {
	var n int
	err := q.ex.QueryRowContext(bg, query, args...).Scan(&n)
	return n, err
}

func isUniqueViolation(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "UNIQUE constraint failed"))
}

func jsonUnmarshal(doc string, v any) error { return json.Unmarshal([]byte(doc), v) }

// filter is one equality condition of a listing; an empty value filters
// nothing.
type filter struct{ column, value string }

// listPage lists the rows of table that match where (with args) and every
// non-empty filter, in creation order: those from offset on, at most limit
// (< 0: all), each read by scan, and how many match in all.
func listPage[T any](q Q, table, cols, where string, args []any, filters []filter, offset, limit int, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, int, error) {
	return listPageOrdered(q, table, cols, where, args, filters, "seq", offset, limit, scan)
}

// inList adds "AND column IN (values)" to where and args; no values adds
// nothing.
func inList(where string, args []any, column string, values []string) (string, []any) {
	if len(values) == 0 {
		return where, args
	}
	where += ` AND ` + column + ` IN (?` + strings.Repeat(`, ?`, len(values)-1) + `)`
	for _, v := range values {
		args = append(args, v)
	}
	return where, args
}

// scanSeqDoc reads a (seq, doc) row into a record whose JSON document does
// not carry its seq.
func scanSeqDoc[T any](sc interface{ Scan(...any) error }, setSeq func(*T, int64)) (T, error) {
	var (
		v   T
		seq int64
		doc string
	)
	if err := sc.Scan(&seq, &doc); err != nil {
		return v, err
	}
	if err := jsonUnmarshal(doc, &v); err != nil {
		return v, err
	}
	setSeq(&v, seq)
	return v, nil
}

// listPageOrdered is listPage with its ORDER BY given.
func listPageOrdered[T any](q Q, table, cols, where string, args []any, filters []filter, orderBy string, offset, limit int, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, int, error) {
	for _, f := range filters {
		if f.value != "" {
			where += ` AND ` + f.column + ` = ?`
			args = append(args, f.value)
		}
	}
	total, err := count(q, `SELECT count(*) FROM `+table+` WHERE `+where, args...)
	if err != nil {
		return nil, 0, err
	}
	rows, err := q.ex.QueryContext(bg, `SELECT `+cols+` FROM `+table+` WHERE `+where+` ORDER BY `+orderBy+` LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, v)
	}
	return out, total, rows.Err()
}
