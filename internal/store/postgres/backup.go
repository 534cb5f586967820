package postgres

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"

	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/store/storecopy"
)

// Backup writes every record of the database, read in one snapshot while
// other requests go on, to w as a file of the embedded store (store/bolt):
// the form otad backup puts in its archive, which otad restore unpacks
// into a data dir or, with a database URL, into an empty database. The
// file is built in Options.TempDir first.
//
// It is a logical copy for moving an install and for backups in the same
// form everywhere. The database itself is better backed up with its own
// tools (pg_dump, or base backups with WAL archiving for point-in-time
// recovery).
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n, err := s.backup(ctx, w)
	if err != nil {
		return n, fmt.Errorf("back up database %s: %w", s.url, dbErr(ctx, err))
	}
	return n, nil
}

func (s *Store) backup(ctx context.Context, w io.Writer) (int64, error) {
	if s.snap != nil {
		return 0, fmt.Errorf("already a backup view")
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a read has nothing to undo
	view := &Store{pool: s.pool, url: s.url, statsMax: s.statsMax, statsMaxBytes: s.statsMaxBytes, snap: tx}

	dir, err := os.MkdirTemp(s.tempDir, "otad-backup-")
	if err != nil {
		return 0, fmt.Errorf("make a temporary directory for the copy: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "otad.db")
	bs, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return 0, err
	}
	defer bs.Close()
	im, err := bs.Import(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := storecopy.Copy(ctx, view, im, nil); err != nil {
		return 0, err
	}
	// The snapshot has been read: end it before the file is written out
	// to a client that may be slow.
	_ = tx.Rollback(ctx)
	if err := bs.Close(); err != nil {
		return 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(ctxWriter{ctx: ctx, w: w}, f)
}

// ctxWriter fails writes once ctx is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
