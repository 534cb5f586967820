package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FS is a Store in a local directory:
//
//	dir/sha256/ab/ab12…(64 hex)   complete, verified blobs
//	dir/tmp/                      uploads in progress
//
// A blob appears under its key only by an atomic rename of a fully written
// and synced temp file, so a crash leaves at most a stray temp file, which
// NewFS removes. Only one process may use a directory at a time (otad holds
// the bbolt lock of the same data dir).
type FS struct {
	dir string
	// createTemp opens the temp file for an upload. It is a field so tests
	// can inject a file whose writes fail (a full disk).
	createTemp func(dir, pattern string) (tempFile, error)
	// mu makes "is it stored already? else rename" atomic among this
	// process's Puts and Deletes, so Info.New is reported once per content.
	mu sync.Mutex
}

// tempFile is the part of *os.File the write path uses.
type tempFile interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

var _ Store = (*FS)(nil)

const (
	dirPerm  = 0o755 // bundles are public; the point is atomicity, not secrecy
	filePerm = 0o644
	copyBuf  = 256 << 10
)

// NewFS opens (creating if needed) a blob directory and removes uploads a
// crash left behind in dir/tmp.
func NewFS(dir string) (*FS, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, "sha256"), dirPerm); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	tmp := filepath.Join(abs, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("clean up interrupted uploads in %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, dirPerm); err != nil {
		return nil, fmt.Errorf("create blob temp dir: %w", err)
	}
	return &FS{
		dir: abs,
		createTemp: func(dir, pattern string) (tempFile, error) {
			return os.CreateTemp(dir, pattern)
		},
	}, nil
}

// OpenFS opens an existing blob directory beside the otad that owns it
// (for otad backup while otad runs on PostgreSQL): unlike NewFS it
// creates nothing and leaves the uploads in dir/tmp alone.
func OpenFS(dir string) (*FS, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob dir %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(abs, "sha256")); err != nil {
		return nil, fmt.Errorf("open blob dir: %w", err)
	}
	return &FS{
		dir: abs,
		createTemp: func(dir, pattern string) (tempFile, error) {
			return os.CreateTemp(dir, pattern)
		},
	}, nil
}

// Dir returns the directory the store lives in.
func (s *FS) Dir() string { return s.dir }

// validKey reports whether k is 64 lowercase hex digits. Every path the
// store builds goes through it, so no key can name anything outside dir.
func validKey(k string) bool {
	if len(k) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *FS) shardDir(key string) string { return filepath.Join(s.dir, "sha256", key[:2]) }

func (s *FS) path(key string) string { return filepath.Join(s.shardDir(key), key) }

// Put implements Store.
func (s *FS) Put(ctx context.Context, r io.Reader, limit int64) (info Info, err error) {
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("store blob: %w", err)
	}
	f, err := s.createTemp(filepath.Join(s.dir, "tmp"), "put-*")
	if err != nil {
		return Info{}, fmt.Errorf("store blob: create temp file: %w", err)
	}
	tmpName := f.Name()
	closed := false
	defer func() {
		// On any failure the temp file goes: nothing partial stays on disk.
		if err != nil {
			if !closed {
				_ = f.Close()
			}
			_ = os.Remove(tmpName)
		}
	}()

	src := r
	if limit > 0 {
		// One byte past the limit tells "exactly limit" from "too large".
		src = io.LimitReader(r, limit+1)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx, src}, make([]byte, copyBuf))
	if err != nil {
		return Info{}, fmt.Errorf("store blob: write %s: %w", tmpName, err)
	}
	if limit > 0 && n > limit {
		return Info{}, fmt.Errorf("store blob: %w: more than %d bytes", ErrTooLarge, limit)
	}
	if err := f.Sync(); err != nil {
		return Info{}, fmt.Errorf("store blob: sync %s: %w", tmpName, err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return Info{}, fmt.Errorf("store blob: close %s: %w", tmpName, err)
	}

	key := hex.EncodeToString(h.Sum(nil))
	return s.commit(tmpName, key, n)
}

// commit moves a complete temp file into place under key, or drops it when
// identical bytes are stored already.
func (s *FS) commit(tmpName, key string, size int64) (Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	final := s.path(key)
	if fi, err := os.Lstat(final); err == nil && fi.Mode().IsRegular() && fi.Size() == size {
		if err := os.Remove(tmpName); err != nil {
			return Info{}, fmt.Errorf("store blob %s: remove duplicate temp file: %w", key, err)
		}
		// The upload renews the blob's time: garbage collection spares
		// blobs younger than its grace period, and this one is about to
		// be referenced again.
		now := time.Now()
		if err := os.Chtimes(final, now, now); err != nil {
			return Info{}, fmt.Errorf("store blob %s: renew its time: %w", key, err)
		}
		return Info{SHA256: key, Size: size, ModTime: now}, nil
	}
	// Absent, or damaged (wrong size): the rename below replaces it.

	shard := s.shardDir(key)
	newShard := false
	if err := os.Mkdir(shard, dirPerm); err == nil {
		newShard = true
	} else if !errors.Is(err, fs.ErrExist) {
		return Info{}, fmt.Errorf("store blob %s: %w", key, err)
	}
	if newShard {
		// The new shard's entry in sha256/ must be durable too.
		if err := syncDir(filepath.Dir(shard)); err != nil {
			return Info{}, fmt.Errorf("store blob %s: %w", key, err)
		}
	}
	if err := os.Chmod(tmpName, filePerm); err != nil {
		return Info{}, fmt.Errorf("store blob %s: %w", key, err)
	}
	if err := os.Rename(tmpName, final); err != nil {
		return Info{}, fmt.Errorf("store blob %s: %w", key, err)
	}
	if err := syncDir(shard); err != nil {
		// The bytes are in place; only their durability across a power cut
		// is in doubt. Report it, keeping the blob: a retry dedups.
		return Info{}, fmt.Errorf("store blob %s: %w", key, err)
	}
	fi, err := os.Stat(final)
	if err != nil {
		return Info{}, fmt.Errorf("store blob %s: %w", key, err)
	}
	return Info{SHA256: key, Size: size, ModTime: fi.ModTime(), New: true}, nil
}

// syncDir makes a rename or create inside dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// ctxReader stops a long upload when the request is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open implements Store. The Content is an *os.File, so net/http can use
// sendfile and serve ranges by seeking.
func (s *FS) Open(ctx context.Context, key string) (Content, Info, error) {
	if !validKey(key) {
		return nil, Info{}, ErrNotFound
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, Info{}, ErrNotFound
		}
		return nil, Info{}, fmt.Errorf("open blob %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, Info{}, fmt.Errorf("open blob %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, Info{}, ErrNotFound
	}
	return f, Info{SHA256: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Stat implements Store.
func (s *FS) Stat(ctx context.Context, key string) (Info, error) {
	if !validKey(key) {
		return Info{}, ErrNotFound
	}
	fi, err := os.Lstat(s.path(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, ErrNotFound
		}
		return Info{}, fmt.Errorf("stat blob %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return Info{}, ErrNotFound
	}
	return Info{SHA256: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements Store. A key that is not 64 lowercase hex digits names
// no blob, so deleting it is a no-op like any missing blob.
func (s *FS) Delete(ctx context.Context, key string) error {
	if !validKey(key) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

// List implements Store. Blobs come in key order; files that are not blobs
// (wrong names, wrong shard) are skipped.
func (s *FS) List(ctx context.Context, fn func(Info) error) error {
	root := filepath.Join(s.dir, "sha256")
	shards, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, sh := range shards {
		if !sh.IsDir() || len(sh.Name()) != 2 {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(root, sh.Name()))
		if err != nil {
			return fmt.Errorf("list blobs: %w", err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("list blobs: %w", err)
			}
			name := e.Name()
			if !validKey(name) || name[:2] != sh.Name() || !e.Type().IsRegular() {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted while listing
			}
			if err != nil {
				return fmt.Errorf("list blobs: %w", err)
			}
			if err := fn(Info{SHA256: name, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}
