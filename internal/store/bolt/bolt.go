// Package bolt is the embedded store.Store: one bbolt file in otad's data
// directory holding apps, channels, bundle records, the history, users,
// device overrides and device stats.
//
// # Layout
//
// Top-level buckets:
//
//	meta     schema_version (8-byte big-endian)
//	events   8-byte big-endian Seq → event (the whole history, one sequence)
//	users    name → user
//	offers   device key (8 bytes) → what otad last offered it (binary, see offers.go)
//	apps     app id → bucket of that app:
//	           app        the app record (key)
//	           channels   name → channel (its sequence numbers channel IDs)
//	           web, apk   version → bundle record, one bucket per kind
//	           overrides  lowercase device id → pin record (JSON; a bare channel
//	                      name is an admin's pin from before pins had owners)
//	           history    Seq → "" (index of the app's events)
//	           chistory   channel name → bucket of Seq → "" (per channel)
//	           stats      received (8 bytes) + sequence (8 bytes) → stat
//	           stats_count number of entries in stats (key)
//	           stats_bytes bytes of the entries in stats, keys included (key;
//	                       counted at the first append when missing)
//	           manifests  version → manifest of a delta release (file list)
//	           seen       SHA-256 → first version whose manifest named it
//	files    app id → bucket of SHA-256 → delta file record (created on
//	         demand: files are uploaded before an app's first release)
//
// History pages are reverse cursor scans of an index from a Seek, so the
// cost of a page does not grow with the history. The device-facing state
// (LoadAppState, LoadState) never touches events or stats, so loading it
// does not grow with the history either.
//
// Every value is JSON of a record type of this package (offers excepted:
// binary, since millions load at every start), not of a wire type in
// pkg/ota, so the file format changes only when this package says so.
// Values are decoded inside their transaction: bbolt's byte slices are valid
// only until it ends.
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/otaship/ota/internal/store"
)

// ErrLocked is returned by Open when another process holds the data file.
var ErrLocked = errors.New("data dir is in use by another otad")

// ErrSchemaTooNew is returned by Open when the file was written by a newer
// otad than this one: running old code over it could lose data.
var ErrSchemaTooNew = errors.New("data file is from a newer otad")

// Options tune Open. The zero value is usable.
type Options struct {
	// Timeout bounds the wait for the file lock (default 1s). bbolt would
	// otherwise wait forever for another otad to exit.
	Timeout time.Duration
	// StatsMaxPerApp caps the device stats kept per app (default 100000);
	// the oldest are dropped first, so a flood cannot fill the disk.
	StatsMaxPerApp int
	// StatsMaxBytesPerApp caps the bytes of those events (their JSON and
	// key; default 64 MiB), oldest dropped first, whichever cap comes first.
	StatsMaxBytesPerApp int64
	// StatsReserveBytes is the free space of the file's file system below
	// which AppendStats refuses device events (store.ErrStorageFull), so
	// they never take the room an upload or a rollback needs (default
	// 256 MiB; negative: no check).
	StatsReserveBytes int64
}

// statsBatchDelay is how long concurrent stats appends gather into one
// transaction, and statsBatchSize how many make it run at once: under a
// flood batches fill and go without waiting, when quiet an append waits at
// most the delay.
const (
	statsBatchDelay = 20 * time.Millisecond
	statsBatchSize  = 16
)

const (
	defaultTimeout             = time.Second
	defaultStatsMaxPerApp      = 100000
	defaultStatsMaxBytesPerApp = 64 << 20
	defaultStatsReserveBytes   = 256 << 20
)

// Store is the bbolt implementation of store.Store. It is safe for
// concurrent use: bbolt serialises writers and lets readers run alongside.
type Store struct {
	db            *bbolt.DB
	path          string
	statsMax      int
	statsMaxBytes int64
	reserve       *diskReserve // nil: no check
	closed        atomic.Bool
	leaders       leaders // Lead
}

var _ store.Store = (*Store)(nil)

// Bucket and key names. Changing one needs a migration.
var (
	bMeta      = []byte("meta")
	bEvents    = []byte("events")
	bUsers     = []byte("users")
	bApps      = []byte("apps")
	kSchema    = []byte("schema_version")
	kApp       = []byte("app")
	bChannels  = []byte("channels")
	bOverrides = []byte("overrides")
	bHistory   = []byte("history")
	bCHistory  = []byte("chistory")
	bStats     = []byte("stats")
	kStatsN    = []byte("stats_count")
	kStatsB    = []byte("stats_bytes")
	bHealth    = []byte("health")
	bFiles     = []byte("files")
	bManifests = []byte("manifests")
	bSeen      = []byte("seen")
)

// migrations bring a file from schema version i to i+1 (index i). They run
// in order at Open, all in one write transaction, so a failure leaves the
// file at its old version. Append only: never edit or reorder a released
// migration.
var migrations = []func(*bbolt.Tx) error{
	// 1: the initial layout.
	func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bEvents, bUsers, bApps} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	},
	// 2: device health (failure memory and install counts per version).
	func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bHealth); err != nil {
			return fmt.Errorf("create bucket %s: %w", bHealth, err)
		}
		return nil
	},
	// 3: delta releases: delta file records, and per app the manifests and
	// the SHA-256 of every file ever published.
	func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bFiles); err != nil {
			return fmt.Errorf("create bucket %s: %w", bFiles, err)
		}
		apps := tx.Bucket(bApps)
		if apps == nil {
			return fmt.Errorf("bucket %s missing", bApps)
		}
		return apps.ForEachBucket(func(k []byte) error {
			for _, name := range [][]byte{bManifests, bSeen} {
				if _, err := apps.Bucket(k).CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("app %q: create bucket %s: %w", k, name, err)
				}
			}
			return nil
		})
	},
	// 4: every user gets a random id (login tokens carry it, so a user
	// created again under a removed one's name does not accept its
	// tokens). Tokens issued before carry none and are refused: users log
	// in again once.
	func(tx *bbolt.Tx) error {
		b, err := usersBucket(tx)
		if err != nil {
			return err
		}
		var names []string
		if err := b.ForEach(func(k, _ []byte) error { names = append(names, string(k)); return nil }); err != nil {
			return err
		}
		for _, name := range names {
			u, err := loadUser(b, name)
			if err != nil {
				return err
			}
			if u.ID != "" {
				continue
			}
			u.ID = store.NewUserID()
			if err := put(b, []byte(name), u); err != nil {
				return err
			}
		}
		return nil
	},
	// 5: device pins have owners. A pin stored before is a bare channel
	// name; the newest history event that set it says who did: a legacy
	// plugin's own setChannel ("device:<id>") becomes a device's pin,
	// anything else stays an admin's.
	markDevicePins,
}

// Open opens (creating when missing) the store file at path, and migrates
// it to the current schema. A file held by another process fails within
// opts.Timeout with an error wrapping ErrLocked.
func Open(path string, opts Options) (*Store, error) {
	return open(path, opts, migrations)
}

func open(path string, opts Options, migs []func(*bbolt.Tx) error) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.StatsMaxPerApp <= 0 {
		opts.StatsMaxPerApp = defaultStatsMaxPerApp
	}
	if opts.StatsMaxBytesPerApp <= 0 {
		opts.StatsMaxBytesPerApp = defaultStatsMaxBytesPerApp
	}
	if opts.StatsReserveBytes == 0 {
		opts.StatsReserveBytes = defaultStatsReserveBytes
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: %w (the file stayed locked for %s; stop the other otad or use another data dir)",
				path, ErrLocked, opts.Timeout)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// Only device stats are written through db.Batch. Devices send them
	// in the background and do not wait on the answer, so batches may
	// gather for longer than bbolt's 10 ms: fewer commits, each with its
	// page writes and fsync, for the same events.
	db.MaxBatchDelay = statsBatchDelay
	db.MaxBatchSize = statsBatchSize
	s := &Store{db: db, path: path, statsMax: opts.StatsMaxPerApp, statsMaxBytes: opts.StatsMaxBytesPerApp}
	if opts.StatsReserveBytes > 0 {
		s.reserve = newDiskReserve(filepath.Dir(path), uint64(opts.StatsReserveBytes))
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return migrate(tx, migs) }); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// migrate runs the migrations the file has not seen yet.
func migrate(tx *bbolt.Tx, migs []func(*bbolt.Tx) error) error {
	meta, err := tx.CreateBucketIfNotExists(bMeta)
	if err != nil {
		return fmt.Errorf("create meta bucket: %w", err)
	}
	var have uint64
	if v := meta.Get(kSchema); v != nil {
		if len(v) != 8 {
			return fmt.Errorf("schema version is %d bytes long, want 8: the file is damaged", len(v))
		}
		have = binary.BigEndian.Uint64(v)
	}
	want := uint64(len(migs))
	if have > want {
		return fmt.Errorf("%w: schema version %d, this otad knows up to %d; run the newer otad or restore a backup",
			ErrSchemaTooNew, have, want)
	}
	for i := have; i < want; i++ {
		if err := migs[i](tx); err != nil {
			return fmt.Errorf("migrate schema %d to %d: %w", i, i+1, err)
		}
	}
	if have == want && meta.Get(kSchema) != nil {
		return nil
	}
	return meta.Put(kSchema, itob(want))
}

// SchemaVersion reports the schema version of the open file.
func (s *Store) SchemaVersion() (uint64, error) {
	var v uint64
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bMeta)
		if b == nil {
			return errors.New("meta bucket missing")
		}
		raw := b.Get(kSchema)
		if len(raw) != 8 {
			return errors.New("schema version missing")
		}
		v = binary.BigEndian.Uint64(raw)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read schema version of %s: %w", s.path, err)
	}
	return v, nil
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Close releases the file. Closing twice is harmless.
func (s *Store) Close() error {
	s.closed.Store(true)
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// Closed reports whether Close was called.
func (s *Store) Closed() bool { return s.closed.Load() }

// Check verifies the file's page structure (bbolt's tx.Check) and returns
// every inconsistency found, joined. Tests run it after each test; an
// operator may run it on a suspicious file.
func (s *Store) Check() error {
	var errs []error
	err := s.db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check store %s: %w", s.path, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("check store %s: %w", s.path, errors.Join(errs...))
	}
	return nil
}

// Backup writes a consistent copy of the file to w from one read
// transaction, so writers go on meanwhile. Cancelling ctx stops the copy at
// the next write to w.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(ctxWriter{ctx: ctx, w: w})
		return err
	})
	if err != nil {
		return n, fmt.Errorf("back up store %s: %w", s.path, err)
	}
	return n, nil
}

// ctxWriter fails writes once ctx is done, so a backup to a client that has
// gone away does not hold its read transaction open.
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

// view and update run fn in a read or write transaction after checking ctx.
// bbolt transactions cannot be interrupted, so ctx is only looked at before.
func (s *Store) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

func (s *Store) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

// itob encodes a sequence number as a key that sorts numerically.
func itob(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
