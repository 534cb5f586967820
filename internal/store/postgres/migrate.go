package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrationFiles are the schema's steps: migrations/NNNN_name.sql brings
// the schema from version NNNN-1 to NNNN. Append only: never edit or
// renumber a released file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one step of the schema.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations is the schema, read from migrationFiles at start.
var migrations = mustLoadMigrations(migrationFiles)

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic(err)
	}
	return ms
}

// loadMigrations reads NNNN_name.sql files and checks they number 1, 2, …
// without gaps.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []migration
	for i, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s is not named NNNN_what.sql", name)
		}
		if v != i+1 {
			return nil, fmt.Errorf("migration %s has number %d; want %d (no gaps, no duplicates)", name, v, i+1)
		}
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(raw)})
	}
	return out, nil
}

// migrationLock is the advisory lock key replicas take while migrating
// (an arbitrary constant: "otad" in ASCII, then 1).
const migrationLock int64 = 0x6f746164_00000001

// migrate applies the migrations the database has not seen, all in one
// transaction under the advisory lock: replicas starting together wait for
// the first, which migrates, and then find nothing to do. A failure leaves
// the schema as it was (PostgreSQL's DDL is transactional).
func (s *Store) migrate(ctx context.Context, migs []migration) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return dbErr(ctx, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after a commit this does nothing
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("take the migration lock: %w", dbErr(ctx, err))
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS otad_schema (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create the schema version table: %w", dbErr(ctx, err))
	}
	var have int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM otad_schema").Scan(&have); err != nil {
		return fmt.Errorf("read the schema version: %w", dbErr(ctx, err))
	}
	if have > len(migs) {
		return fmt.Errorf("%w: schema version %d, this otad knows up to %d; run the newer otad or restore a backup",
			ErrSchemaTooNew, have, len(migs))
	}
	for _, m := range migs[have:] {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate schema %d to %d (%s): %w", m.version-1, m.version, m.name, dbErr(ctx, err))
		}
		if _, err := tx.Exec(ctx, "INSERT INTO otad_schema (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			return fmt.Errorf("record schema version %d: %w", m.version, dbErr(ctx, err))
		}
	}
	return dbErr(ctx, tx.Commit(ctx))
}

// SchemaVersion reports the schema version of the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db().QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM otad_schema").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version of %s: %w", s.url, dbErr(ctx, err))
	}
	return v, nil
}
