package server

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/pkg/ota"
)

// Backup archive layout. A backup is a tar (otad backup may gzip it) whose
// entries come in this order:
//
//	manifest.json                 BackupManifest
//	otad.db                       the metadata store, as Store.Backup wrote it
//	blobs/sha256/ab/ab12…(64 hex) every blob the copied database refers to
//	jwt.key                       only with otad backup --include-key
//
// The blob paths are those of the data directory, so an unpacked backup is
// a data directory too. Changing the layout means a new BackupFormat.
const (
	BackupFormat       = 1
	BackupManifestName = "manifest.json"
	BackupDBName       = "otad.db"
	BackupKeyName      = "jwt.key"
	BackupBlobDir      = "blobs/sha256"
	BackupContentType  = "application/x-tar"
)

// BackupBlobName is the archive path of the blob with the given SHA-256.
func BackupBlobName(sha string) string { return BackupBlobDir + "/" + sha[:2] + "/" + sha }

// BackupFile is the size and SHA-256 of a file in a backup.
type BackupFile struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// BackupManifest describes a backup; it is its first entry, so a reader
// knows what to expect before the bytes arrive.
type BackupManifest struct {
	Format      int          `json:"format"`
	OtadVersion string       `json:"otad_version"`
	CreatedAt   time.Time    `json:"created_at"`
	DB          BackupFile   `json:"db"`
	Blobs       []BackupFile `json:"blobs"` // sorted by SHA-256
}

// SnapshotFunc writes a consistent copy of the metadata store to w, as
// store.Store's Backup does.
type SnapshotFunc func(ctx context.Context, w io.Writer) (int64, error)

// BackupOptions tune PrepareBackup.
type BackupOptions struct {
	// TempDir holds the database copy until it is written out ("": the
	// system's temp dir). It needs room for one copy of otad.db.
	TempDir string
	// Version is recorded in the manifest.
	Version string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// PreparedBackup is a database copy and the list of blobs it refers to,
// ready to be written out as an archive. Close removes the copy.
type PreparedBackup struct {
	manifest BackupManifest
	db       *os.File
	bl       blob.Store
}

// PrepareBackup takes a consistent copy of the metadata store with snapshot
// and lists the blobs that copy refers to. The list is read from the copy,
// not the live store, so it matches the snapshot exactly: a bundle
// published after the copy is neither in the database nor in the blobs. A
// referenced blob that is missing fails the backup: the data directory is
// damaged and a backup that hides it would be restored as if it were whole.
func PrepareBackup(ctx context.Context, snapshot SnapshotFunc, bl blob.Store, opts BackupOptions) (_ *PreparedBackup, err error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	created := now().UTC()
	db, err := os.CreateTemp(opts.TempDir, ".otad-backup-*.db")
	if err != nil {
		return nil, fmt.Errorf("back up: create temp file for the database copy: %w", err)
	}
	defer func() {
		if err != nil {
			_ = db.Close()
			_ = os.Remove(db.Name())
		}
	}()
	h := sha256.New()
	size, err := snapshot(ctx, io.MultiWriter(db, h))
	if err != nil {
		return nil, fmt.Errorf("back up: copy the database: %w", err)
	}
	refs, err := referencedInCopy(ctx, db)
	if err != nil {
		return nil, err
	}
	m := BackupManifest{
		Format:      BackupFormat,
		OtadVersion: opts.Version,
		CreatedAt:   created,
		DB:          BackupFile{SHA256: hex.EncodeToString(h.Sum(nil)), Size: size},
		Blobs:       make([]BackupFile, 0, len(refs)),
	}
	for sha := range refs {
		info, err := bl.Stat(ctx, sha)
		if errors.Is(err, blob.ErrNotFound) {
			return nil, fmt.Errorf("back up: bundle file %s is missing from the data dir although a bundle refers to it; re-upload that bundle (same version and bytes) or delete its release, then back up again", sha)
		}
		if err != nil {
			return nil, fmt.Errorf("back up: %w", err)
		}
		m.Blobs = append(m.Blobs, BackupFile{SHA256: sha, Size: info.Size})
	}
	slices.SortFunc(m.Blobs, func(a, b BackupFile) int { return strings.Compare(a.SHA256, b.SHA256) })
	return &PreparedBackup{manifest: m, db: db, bl: bl}, nil
}

// referencedInCopy opens a second copy of the database copy and asks it
// which blobs it refers to. A second copy because opening a store may
// migrate its file, and the copy in the backup must stay byte for byte
// what the snapshot wrote (a backup taken before an upgrade must restore
// into the old otad).
func referencedInCopy(ctx context.Context, db *os.File) (map[string]bool, error) {
	if _, err := db.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("back up: rewind database copy: %w", err)
	}
	scratch, err := os.CreateTemp(filepath.Dir(db.Name()), ".otad-backup-*.scratch.db")
	if err != nil {
		return nil, fmt.Errorf("back up: create scratch copy: %w", err)
	}
	defer os.Remove(scratch.Name())
	_, err = io.Copy(scratch, db)
	if cerr := scratch.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("back up: write scratch copy: %w", err)
	}
	st, err := bolt.Open(scratch.Name(), bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("back up: read the database copy: %w", err)
	}
	defer st.Close()
	refs, err := st.ReferencedBlobs(ctx)
	if err != nil {
		return nil, fmt.Errorf("back up: %w", err)
	}
	return refs, nil
}

// Manifest describes the backup.
func (b *PreparedBackup) Manifest() BackupManifest { return b.manifest }

// Close removes the database copy.
func (b *PreparedBackup) Close() error {
	err := b.db.Close()
	if rerr := os.Remove(b.db.Name()); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("remove database copy: %w", err)
	}
	return nil
}

// WriteTar writes the manifest, the database and the blobs to tw. It does
// not close tw, so the caller may append entries. Every blob is hashed as
// it is copied: a file damaged on disk fails the backup instead of being
// saved as if it were good.
func (b *PreparedBackup) WriteTar(ctx context.Context, tw *tar.Writer) error {
	m := b.manifest
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode backup manifest: %w", err)
	}
	if err := writeTarEntry(tw, BackupManifestName, int64(len(raw)), m.CreatedAt, bytes.NewReader(raw)); err != nil {
		return err
	}
	if _, err := b.db.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("back up: rewind database copy: %w", err)
	}
	if err := writeTarEntry(tw, BackupDBName, m.DB.Size, m.CreatedAt, b.db); err != nil {
		return err
	}
	for _, f := range m.Blobs {
		if err := b.writeBlob(ctx, tw, f); err != nil {
			return err
		}
	}
	return nil
}

func (b *PreparedBackup) writeBlob(ctx context.Context, tw *tar.Writer, f BackupFile) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("back up: %w", err)
	}
	content, info, err := b.bl.Open(ctx, f.SHA256)
	if err != nil {
		return fmt.Errorf("back up bundle file %s: %w", f.SHA256, err)
	}
	defer content.Close()
	if info.Size != f.Size {
		return fmt.Errorf("back up bundle file %s: it has %d bytes, %d a moment ago; the file is damaged or was replaced, back up again", f.SHA256, info.Size, f.Size)
	}
	h := sha256.New()
	if err := writeTarEntry(tw, BackupBlobName(f.SHA256), f.Size, info.ModTime, hashingReader{content, h}); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("back up bundle file %s: its bytes hash to %s, the file is damaged; re-upload that bundle", f.SHA256, got)
	}
	return nil
}

// writeTarEntry writes one regular file entry of exactly size bytes.
func writeTarEntry(tw *tar.Writer, name string, size int64, mod time.Time, r io.Reader) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o600,
		ModTime:  mod.UTC().Truncate(time.Second),
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("back up %s: %w", name, err)
	}
	n, err := io.Copy(tw, io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("back up %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("back up %s: read %d bytes, want %d: the file shrank", name, n, size)
	}
	return nil
}

type hashingReader struct {
	r io.Reader
	h hash.Hash
}

func (r hashingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	return n, err
}

// handleBackup is GET /api/v1/backup: a backup archive of the running
// server, streamed. User logins only: the archive holds every password
// hash and CI token hash. The signing key is never sent.
func (s *Server) handleBackup(c echo.Context) error {
	if err := requireUserLogin(c, "download backups"); err != nil {
		return err
	}
	ctx := c.Request().Context()
	log := s.reqLog(c)
	// Health lives in memory and is saved in batches; save it now so the
	// backup has what the server knows.
	if err := s.flushHealth(ctx); err != nil {
		log.Warn("backup: device health not saved; the backup has the last saved health", "err", err)
	}
	b, err := PrepareBackup(ctx, s.store.Backup, s.blobs, BackupOptions{Version: s.cfg.Version.Version, Now: s.cfg.Now})
	if err != nil {
		// Only a user login gets here, and the reason (a bundle file
		// missing from disk, say) is what they must act on.
		return newError(http.StatusInternalServerError, ota.ErrCodeInternal, "%v", err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			log.Warn("backup: temp file left behind", "err", err)
		}
	}()
	m := b.Manifest()
	var total int64
	for _, f := range m.Blobs {
		total += f.Size
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, BackupContentType)
	h.Set(echo.HeaderContentDisposition, `attachment; filename="otad-backup-`+m.CreatedAt.Format("20060102T150405Z")+`.tar"`)
	c.Response().WriteHeader(http.StatusOK)
	// From here on the status is sent: a failure aborts the connection, so
	// the client sees an error rather than a short archive that ends on an
	// entry boundary (it also checks every manifest entry arrived).
	tw := tar.NewWriter(c.Response())
	err = b.WriteTar(ctx, tw)
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		log.Error("backup: stream cut short", "err", err)
		panic(http.ErrAbortHandler)
	}
	log.Info("backup sent", "user", actor(c), "db_bytes", m.DB.Size, "blobs", len(m.Blobs), "blob_bytes", total)
	return nil
}
