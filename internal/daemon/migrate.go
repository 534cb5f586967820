package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/store/postgres"
	"github.com/otaship/ota/internal/store/storecopy"
)

// migrateOptions are otad migrate's settings.
type migrateOptions struct {
	fromDataDir   string
	toDatabaseURL string
	// toBlobs is where the bundle files go; nil keeps them in the data
	// dir (they are only checked). otad migrate --to-bucket sets it to
	// the S3 store of the bucket.
	toBlobs blob.Store
}

func newMigrateCmd(e *env) *cobra.Command {
	var o migrateOptions
	cmd := &cobra.Command{
		Use:   "migrate --from-data-dir DIR --to-database-url URL",
		Short: "Copy a data dir's metadata into PostgreSQL",
		Long: `Copy everything otad keeps in the bbolt file of a data dir into a PostgreSQL
database: users, apps, channels, bundle records, the history with its
sequence numbers and times, CI tokens, webhooks and their delivery logs,
device overrides, device health and device stats.

The otad using the data dir must be stopped (the file is locked while it
runs). The database is written in one transaction, and only after the
counts of everything copied agree with the data dir's; on any failure it is
left as it was. The schema is created when the database has none.

Running it again is safe: what was copied before is written over with the
same records, history events must match those already there, and stats are
added only after the newest the database holds. So a second run after a
completed one changes nothing, and a run after the data dir moved on adds
what is new. A database written to by otad since (events or records the
data dir lacks) is refused rather than merged.

Every bundle file a record refers to is read and checked against its
SHA-256. The files stay in the data dir: start otad with the same
--data-dir and --database-url afterwards. The token signing key stays in
the data dir too.

The URL may come from --database-url or OTAD_DATABASE_URL instead of
--to-database-url, which keeps the password out of the process list.`,
		Example: `  otad migrate --from-data-dir /var/lib/otad --to-database-url postgres://otad:...@db:5432/otad
  OTAD_DATABASE_URL=postgres://otad:...@db:5432/otad otad migrate --from-data-dir /var/lib/otad`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags(), e.getenv)
			if err != nil {
				return &usageError{err}
			}
			if o.toDatabaseURL == "" {
				o.toDatabaseURL = cfg.DatabaseURL
			}
			switch {
			case o.fromDataDir == "":
				return &usageError{errors.New("--from-data-dir is required: the data dir of the otad to move")}
			case o.toDatabaseURL == "":
				return &usageError{errors.New("--to-database-url (or --database-url, OTAD_DATABASE_URL) is required: the PostgreSQL database to copy into")}
			}
			return runMigrate(cmd.Context(), e, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.fromDataDir, "from-data-dir", "", "data dir of the otad to move (stop it first)")
	f.StringVar(&o.toDatabaseURL, "to-database-url", "", "PostgreSQL database to copy into, postgres://USER:PASSWORD@HOST:PORT/DATABASE (default --database-url)")
	return cmd
}

// runMigrate copies the bundle files (or checks them in place), then the
// records, so the database never names a file the destination lacks.
func runMigrate(ctx context.Context, e *env, o migrateOptions) error {
	src, err := openStore(o.fromDataDir, false)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openDatabase(ctx, o.toDatabaseURL, true)
	if err != nil {
		return err
	}
	defer dst.Close()
	progress := func(msg string) { fmt.Fprintln(e.stderr, msg) }

	refs, err := src.ReferencedBlobs(ctx)
	if err != nil {
		return err
	}
	srcBlobs, err := blob.OpenFS((&config{DataDir: o.fromDataDir}).BlobDir())
	if err != nil {
		return fmt.Errorf("bundle files of %s: %w", o.fromDataDir, err)
	}
	bs, err := copyBlobs(ctx, srcBlobs, o.toBlobs, refs, progress)
	if err != nil {
		return err
	}

	im, err := dst.Import(ctx)
	if err != nil {
		return err
	}
	defer im.Rollback(ctx) //nolint:errcheck // after Finish this does nothing
	c, err := storecopy.Copy(ctx, src, im, progress)
	if err != nil {
		return fmt.Errorf("copy %s into %s: %w", o.fromDataDir, postgres.Redact(o.toDatabaseURL), err)
	}
	fmt.Fprintf(e.stdout, "Copied %s into %s: %s.\n", src.Path(), dst.URL(), c)
	if n := im.StatsSkipped(); n > 0 {
		fmt.Fprintf(e.stdout, "%d of the stats events were in the database already.\n", n)
	}
	if o.toBlobs == nil {
		fmt.Fprintf(e.stdout, "Checked %d bundle files (%s) in %s; they stay there.\n", bs.checked, formatBytes(bs.bytes), srcBlobs.Dir())
		fmt.Fprintf(e.stdout, "Start otad with --data-dir %s --database-url %s.\n", o.fromDataDir, dst.URL())
	} else {
		fmt.Fprintf(e.stdout, "Copied %d bundle files (%s); %d were there already.\n", bs.copied, formatBytes(bs.bytes), bs.present)
	}
	return nil
}

// blobSummary is what copyBlobs did.
type blobSummary struct {
	checked, copied, present int
	bytes                    int64
}

// copyBlobs copies every bundle file in refs from src to dst; dst.Put
// hashes what it stores, so each copy is checked against its SHA-256.
// Files dst has already are left alone (they were checked when stored),
// which makes a rerun cheap. With dst nil every file is read in place and
// checked instead. A missing or damaged file fails the migration before
// any record is copied.
func copyBlobs(ctx context.Context, src, dst blob.Store, refs map[string]bool, progress func(string)) (blobSummary, error) {
	var sum blobSummary
	shas := make([]string, 0, len(refs))
	for sha := range refs {
		shas = append(shas, sha)
	}
	slices.Sort(shas)
	for i, sha := range shas {
		if i > 0 && i%100 == 0 {
			progress(fmt.Sprintf("bundle files: %d of %d", i, len(shas)))
		}
		if dst != nil {
			if _, err := dst.Stat(ctx, sha); err == nil {
				sum.present++
				continue
			} else if !errors.Is(err, blob.ErrNotFound) {
				return sum, fmt.Errorf("look for bundle file %s at the destination: %w", sha, err)
			}
		}
		n, err := copyBlob(ctx, src, dst, sha)
		if err != nil {
			return sum, err
		}
		sum.bytes += n
		if dst == nil {
			sum.checked++
		} else {
			sum.copied++
		}
	}
	return sum, nil
}

func copyBlob(ctx context.Context, src, dst blob.Store, sha string) (int64, error) {
	r, info, err := src.Open(ctx, sha)
	if errors.Is(err, blob.ErrNotFound) {
		return 0, fmt.Errorf("bundle file %s is missing although a bundle refers to it; re-upload that bundle (same version and bytes) or delete its release, then migrate again", sha)
	}
	if err != nil {
		return 0, err
	}
	defer r.Close()
	if dst == nil {
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil {
			return n, fmt.Errorf("read bundle file %s: %w", sha, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sha {
			return n, fmt.Errorf("bundle file %s holds bytes with SHA-256 %s: it is damaged; re-upload that bundle, then migrate again", sha, got)
		}
		return n, nil
	}
	put, err := dst.Put(ctx, r, 0)
	if err != nil {
		return 0, fmt.Errorf("copy bundle file %s: %w", sha, err)
	}
	if put.SHA256 != sha {
		if put.New {
			_ = dst.Delete(ctx, put.SHA256)
		}
		return put.Size, fmt.Errorf("bundle file %s holds bytes with SHA-256 %s: it is damaged; re-upload that bundle, then migrate again", sha, put.SHA256)
	}
	if put.Size != info.Size {
		return put.Size, fmt.Errorf("bundle file %s: copied %d bytes of %d", sha, put.Size, info.Size)
	}
	return put.Size, nil
}
