// Package postgres is the store.Store on PostgreSQL, for otad replicas that
// share one database. It behaves as the embedded store (store/bolt) does:
// both pass the same conformance suite (store/storetest).
//
// # Records
//
// Each record is one row: the columns that key, order or filter it, and a
// jsonb column holding the whole value as otad's Go types encode it (the
// embedded store keeps JSON values too). A field added to ota.Bundle or
// ota.Channel is therefore stored and read back without a migration; only
// a new key, column or index needs one. The schema is in migrations/*.sql,
// applied in order at Open under an advisory lock, so replicas starting
// together migrate once.
//
// # Writes
//
// Every write that moves a channel (publish, rollback, promote, delete,
// rollout step, halt, policy change, override) is one READ COMMITTED
// transaction that first locks its app's row (SELECT … FOR NO KEY UPDATE).
// Writers of one app are thereby serialised across every replica, and each
// reads what the one before it committed; writers of other apps do not
// wait for each other. Device stats and health take no app lock.
//
// The history's sequence numbers come from a one-row counter that the
// transaction increments just before it commits, after all its other work.
// The row stays locked until the commit, so numbers are handed out in
// commit order: a reader that sees event N sees every event below it, and
// "events after N" never skips one committed late. Only writes that record
// an event take that lock, and only for their last statements.
//
// A transaction that fails with a serialisation failure or a deadlock
// (40001, 40P01) is run again from the start, a few times.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otaship/ota/internal/store"
)

// ErrSchemaTooNew is returned by Open when the database was migrated by a
// newer otad than this one: running old code over it could lose data.
var ErrSchemaTooNew = errors.New("database schema is from a newer otad")

// ErrNoSchema is returned by Open with Options.MustExist when the
// database holds no otad schema.
var ErrNoSchema = errors.New("the database holds no otad schema")

// ErrUnreachable wraps the error of an Open that could not reach the
// server (refused, timed out, authentication failed).
var ErrUnreachable = errors.New("cannot connect")

// Options tune Open. The zero value is usable.
type Options struct {
	// StatsMaxPerApp caps the device stats kept per app (default 100000);
	// the oldest are dropped first, as in the embedded store.
	StatsMaxPerApp int
	// StatsMaxBytesPerApp caps the bytes of those events (their JSON;
	// default 64 MiB), whichever cap comes first. The database's free
	// space is not otad's to see: a full disk is the database's to refuse.
	StatsMaxBytesPerApp int64
	// ConnectTimeout bounds the first connection at Open (default 10s).
	ConnectTimeout time.Duration
	// MaxConns caps the pool (default: pool_max_conns of the URL, else
	// 10: device stats batches from many requests at once share it with
	// admin writes).
	MaxConns int32
	// TempDir holds the file Backup builds before writing it out ("": the
	// system's temp dir).
	TempDir string
	// MustExist refuses a database otad never used (ErrNoSchema) instead
	// of creating the schema in it: commands that only read should not
	// take a mistyped URL for an empty server.
	MustExist bool
}

const (
	defaultStatsMaxPerApp = 100000
	defaultStatsMaxBytes  = 64 << 20
	defaultConnectTimeout = 10 * time.Second
	defaultMaxConns       = 10
	// maxAttempts bounds the runs of a transaction that keeps failing with
	// serialisation failures or deadlocks.
	maxAttempts = 8
)

// Store is the PostgreSQL store.Store. It is safe for concurrent use, also
// by several processes on one database.
type Store struct {
	pool          *pgxpool.Pool
	url           string // redacted, for messages
	statsMax      int
	statsMaxBytes int64
	tempDir       string
	// snap, when set, is the one read-only transaction every read runs in:
	// the consistent view Backup copies from. Writes are refused.
	snap   pgx.Tx
	closed atomic.Bool
	// apps caches the ids of apps known to exist, for device stats: apps
	// are never removed, so an id once seen stays true.
	apps sync.Map
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at rawURL (postgres://…), checks that it
// answers, and migrates its schema to the current version.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	red := Redact(rawURL)
	cfg, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.StatsMaxPerApp <= 0 {
		opts.StatsMaxPerApp = defaultStatsMaxPerApp
	}
	if opts.StatsMaxBytesPerApp <= 0 {
		opts.StatsMaxBytesPerApp = defaultStatsMaxBytes
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = defaultConnectTimeout
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !strings.Contains(rawURL, "pool_max_conns"):
		cfg.MaxConns = defaultMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > opts.ConnectTimeout {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %s", red, scrub(err, rawURL))
	}
	s := &Store{pool: pool, url: red, statsMax: opts.StatsMaxPerApp, statsMaxBytes: opts.StatsMaxBytesPerApp, tempDir: opts.TempDir}
	pctx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("database %s: %w: %s (is PostgreSQL running there, and are the user, password and database name right?)",
			red, ErrUnreachable, scrub(err, rawURL))
	}
	if opts.MustExist {
		var ok bool
		if err := pool.QueryRow(ctx, "SELECT to_regclass('otad_schema') IS NOT NULL").Scan(&ok); err != nil {
			pool.Close()
			return nil, fmt.Errorf("database %s: %w", red, dbErr(ctx, err))
		}
		if !ok {
			pool.Close()
			return nil, fmt.Errorf("database %s: %w", red, ErrNoSchema)
		}
	}
	if err := s.migrate(ctx, migrations); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database %s: %w", red, err)
	}
	return s, nil
}

// parseURL checks the URL is a postgres:// one and turns it into a pool
// configuration. Messages never hold the password.
func parseURL(rawURL string) (*pgxpool.Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, fmt.Errorf("database URL %s is not of the form postgres://USER:PASSWORD@HOST:PORT/DATABASE", Redact(rawURL))
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("database URL %s: %s", Redact(rawURL), scrub(err, rawURL))
	}
	return cfg, nil
}

// Redact returns rawURL with its password replaced, for logs and messages.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(a database URL that does not parse)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// scrub is err's text with the URL's password cut out, in case a driver
// message quotes it.
func scrub(err error, rawURL string) string {
	msg := err.Error()
	u, perr := url.Parse(rawURL)
	if perr != nil {
		return msg
	}
	var secrets []string
	if pw, ok := u.User.Password(); ok {
		secrets = append(secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
	}
	if pw := u.Query().Get("password"); pw != "" {
		secrets = append(secrets, pw, url.QueryEscape(pw))
	}
	for _, pw := range secrets {
		if pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// URL returns the database URL without its password.
func (s *Store) URL() string { return s.url }

// Close closes the pool. Closing twice is harmless.
func (s *Store) Close() error {
	if s.snap != nil {
		return nil // a view; its owner ends the transaction
	}
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database %s: %w", s.url, err)
	}
	return nil
}

// querier is what both the pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// db is where single-statement reads run.
func (s *Store) db() querier {
	if s.snap != nil {
		return s.snap
	}
	return s.pool
}

// read runs fn in one REPEATABLE READ, read-only transaction, so reads of
// several statements see one state.
func (s *Store) read(ctx context.Context, fn func(q querier) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.snap != nil {
		return fn(s.snap)
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return dbErr(ctx, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a read has nothing to undo
	if err := fn(tx); err != nil {
		return err
	}
	return dbErr(ctx, tx.Commit(ctx))
}

// txn is one write transaction. Events appended to it are numbered and
// inserted just before the commit (see the package comment).
type txn struct {
	pgx.Tx
	events []pendingEvent
}

// write runs fn in a READ COMMITTED transaction and commits it, running it
// again from the start on a serialisation failure or deadlock. fn must
// not keep state between runs other than through its result.
func (s *Store) write(ctx context.Context, fn func(t *txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.snap != nil {
		return errors.New("a backup view of the database cannot be written to")
	}
	for attempt := 1; ; attempt++ {
		err := s.writeOnce(ctx, fn)
		if err == nil || !retryable(err) || attempt == maxAttempts || ctx.Err() != nil {
			return err
		}
		// Jittered backoff: two replicas that deadlocked should not
		// collide again in step.
		d := time.Duration(attempt) * time.Duration(1+rand.IntN(5)) * time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

func (s *Store) writeOnce(ctx context.Context, fn func(t *txn) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return dbErr(ctx, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after a commit this does nothing
	t := &txn{Tx: tx}
	if err := fn(t); err != nil {
		return dbErr(ctx, err)
	}
	if err := t.flushEvents(ctx); err != nil {
		return dbErr(ctx, err)
	}
	return dbErr(ctx, tx.Commit(ctx))
}

// retryable reports a failure that running the transaction again may cure.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return false
}

// dbErr makes a cancelled context's error the one returned, so callers
// can tell it with errors.Is, whatever the driver wrapped it in.
func dbErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}
