package daemon

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/server"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/store/postgres"
	"github.com/otaship/ota/internal/store/storecopy"
	"github.com/otaship/ota/internal/version"
	"github.com/otaship/ota/pkg/ota"
)

// maxManifestBytes bounds the manifest read from an archive: about a
// hundred bytes per bundle file, so this allows millions.
const maxManifestBytes = 256 << 20

// maxKeyBytes bounds a jwt.key entry; real keys are a few dozen bytes.
const maxKeyBytes = 64 << 10

func newBackupCmd(e *env) *cobra.Command {
	var serverURL string
	var includeKey, force bool
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent backup of the data dir to FILE, also while otad runs",
		Long: `Write a backup of the data directory to FILE: a tar (gzip-compressed when
FILE ends in .gz or .tgz) of the database and every bundle file it refers
to, with a manifest of their sizes and SHA-256.

When otad is stopped, the database is read directly (read-only: an older
database is not migrated). When otad runs on the data dir, the database is
locked, so the backup is asked of the running server instead (GET
/api/v1/backup): it logs in with OTAD_ADMIN_USER and OTAD_ADMIN_PASSWORD
at --server, or at the address otad is configured to listen on (--addr,
OTAD_ADDR, the config file; with HTTPS configured, its public URL). Either way the copy is consistent: uploads
going on meanwhile are either wholly in it or not at all.

The file is written to FILE.tmp and renamed when complete, so FILE is never
partial. It is created with mode 0600: it holds the password hashes.

The token signing key (jwt.key) is not included: it is a secret that lets
anyone holding it log in as any user. Without it, everyone logs in again
after a restore (CI tokens keep working). --include-key adds it, read from
--jwt-key-file (default <data-dir>/jwt.key) on this machine; then keep the
backup as secret as the key.

With --database-url (PostgreSQL), the records are read from the database
in one snapshot, also while otad runs, and written in the same form (a
bbolt file of every record, history numbers and times included), with the
bundle files of the data dir. Such a backup restores into a data dir or,
with --database-url, into an empty database. For the database alone, its
own tools do more (pg_dump, or base backups with WAL archiving for
point-in-time recovery): see docs/operations.md.

Restore a backup with otad restore.`,
		Example: `  otad backup /backup/otad-$(date +%F).tar.gz
  OTAD_ADMIN_USER=admin OTAD_ADMIN_PASSWORD=... otad backup --data-dir /var/lib/otad otad.tar
  otad backup --server http://127.0.0.1:8080 --include-key otad.tar`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd.Flags(), e.getenv)
			if err != nil {
				return &usageError{err}
			}
			if err := refuseBucket(cfg, "backup"); err != nil {
				return err
			}
			return backup(cmd.Context(), e, cfg, args[0], backupFlags{serverURL: serverURL, includeKey: includeKey, force: force})
		},
	}
	f := cmd.Flags()
	f.StringVar(&serverURL, "server", "", "URL of the running otad to back up (default http://<addr>, used only when the data dir is locked)")
	f.BoolVar(&includeKey, "include-key", false, "add the token signing key to the backup (a secret: keep the file safe)")
	f.BoolVar(&force, "force", false, "replace FILE when it exists")
	f.String(keyAddr, defaultAddr, "address the running otad listens on ($OTAD_ADDR)")
	f.String(keyJWTKeyFile, "", "file of the token signing key, for --include-key (default <data-dir>/jwt.key) ($OTAD_JWT_KEY_FILE)")
	return cmd
}

func newRestoreCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup into an empty data dir",
		Long: `Unpack a backup written by otad backup into the data directory, which must
be empty or missing: restore never overwrites data. Every bundle file is
checked against its SHA-256 and the manifest while it is unpacked, and the
database is opened and checked at the end; on any failure what was
unpacked is removed again.

When the backup holds the token signing key it is written to --jwt-key-file
(default <data-dir>/jwt.key), which must not exist. Without one, otad makes
a new key at its next start and everyone logs in again.

With --database-url (PostgreSQL), the records go into that database, which
must hold none yet (a new database, or one otad only created its tables
in), and the bundle files into the data dir, which must be empty too.

Then start otad on the data dir as usual.`,
		Example: "  otad restore --data-dir /var/lib/otad /backup/otad-2026-11-27.tar.gz",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd.Flags(), e.getenv)
			if err != nil {
				return &usageError{err}
			}
			if err := refuseBucket(cfg, "restore"); err != nil {
				return err
			}
			var sum restoreSummary
			into := cfg.DataDir
			if cfg.DatabaseURL != "" {
				sum, err = restoreDatabase(cmd.Context(), cfg, args[0])
				into = fmt.Sprintf("the database %s (bundle files into %s)", postgres.Redact(cfg.DatabaseURL), cfg.DataDir)
			} else {
				sum, err = restore(cmd.Context(), cfg, args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Restored %s into %s: database of %s, %d bundle files (%s), made by otad %s at %s.\n",
				args[0], into, formatBytes(sum.manifest.DB.Size), len(sum.manifest.Blobs), formatBytes(sum.blobBytes),
				sum.manifest.OtadVersion, sum.manifest.CreatedAt.Format(time.RFC3339))
			if sum.records != nil {
				fmt.Fprintf(e.stdout, "Records: %s.\n", sum.records)
			}
			if sum.key {
				fmt.Fprintf(e.stdout, "The token signing key was restored to %s.\n", cfg.JWTKeyFile)
			} else {
				fmt.Fprintln(e.stdout, "The backup has no token signing key: otad makes a new one at its next start, and everyone logs in again (CI tokens keep working).")
			}
			return nil
		},
	}
	cmd.Flags().String(keyJWTKeyFile, "", "where to put the backup's token signing key, if it has one (default <data-dir>/jwt.key) ($OTAD_JWT_KEY_FILE)")
	return cmd
}

type backupFlags struct {
	serverURL  string
	includeKey bool
	force      bool
}

// backup writes the archive of cfg's data dir to file: directly from the
// database when no otad holds it, else through the running otad's API.
func backup(ctx context.Context, e *env, cfg *config, file string, fl backupFlags) error {
	if !fl.force {
		if _, err := os.Lstat(file); err == nil {
			return fmt.Errorf("%s exists; pass --force to replace it, or choose another name", file)
		}
	}
	var key []byte
	if fl.includeKey {
		var err error
		if key, err = os.ReadFile(cfg.JWTKeyFile); err != nil {
			return fmt.Errorf("--include-key: read the signing key: %w (point --jwt-key-file at it)", err)
		}
	}
	var (
		m   server.BackupManifest
		err error
	)
	online := fl.serverURL != ""
	how := "from the stopped data dir"
	switch {
	case online:
	case cfg.DatabaseURL != "":
		// The database can be read beside a running otad: no lock to
		// wait for, no server to ask.
		how = "from the database " + postgres.Redact(cfg.DatabaseURL) + " and the data dir"
		if m, err = backupDatabase(ctx, cfg, file, key); err != nil {
			return err
		}
	default:
		m, err = backupOffline(ctx, cfg, file, key)
		var le *lockedError
		if errors.As(err, &le) {
			online = true
		} else if err != nil {
			return err
		}
	}
	if online {
		if m, err = backupOnline(ctx, e, cfg, file, key, fl.serverURL); err != nil {
			return err
		}
	}
	var total int64
	for _, b := range m.Blobs {
		total += b.Size
	}
	if online {
		how = "from the running otad"
	}
	fmt.Fprintf(e.stdout, "Backed up %s %s to %s: database of %s, %d bundle files (%s).\n",
		cfg.DataDir, how, file, formatBytes(m.DB.Size), len(m.Blobs), formatBytes(total))
	if key == nil {
		fmt.Fprintln(e.stdout, "The token signing key is not in it (pass --include-key to add it): after a restore everyone logs in again.")
	} else {
		fmt.Fprintln(e.stdout, "It holds the token signing key: keep it as secret as the key.")
	}
	return nil
}

// backupOffline reads the database of a stopped otad. It opens the file
// read-only with bbolt itself rather than through the store, which would
// migrate an older file: a backup taken with a new binary before an
// upgrade must still restore into the old one. A running otad holds the
// file's exclusive lock; that comes back as a *lockedError.
func backupOffline(ctx context.Context, cfg *config, file string, key []byte) (server.BackupManifest, error) {
	if _, err := os.Stat(cfg.DBPath()); errors.Is(err, fs.ErrNotExist) {
		return server.BackupManifest{}, fmt.Errorf("no otad database in %s: check --data-dir", cfg.DataDir)
	}
	db, err := bbolt.Open(cfg.DBPath(), 0o600, &bbolt.Options{ReadOnly: true, Timeout: openTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return server.BackupManifest{}, &lockedError{dir: cfg.DataDir, err: bolt.ErrLocked}
	}
	if err != nil {
		return server.BackupManifest{}, fmt.Errorf("open database: %w", err)
	}
	// The lock is held only while the database is copied: an otad starting
	// meanwhile would fail. After, the blobs the copy names stay: a
	// starting otad deletes only files its database (the same) does not
	// refer to.
	defer db.Close()
	// NewFS clears the uploads a crash left behind, as serve does: no otad
	// runs, and none can start while the read lock is held.
	bl, err := blob.NewFS(cfg.BlobDir())
	if err != nil {
		return server.BackupManifest{}, fmt.Errorf("open bundle directory: %w", err)
	}
	snapshot := func(ctx context.Context, w io.Writer) (int64, error) {
		var n int64
		err := db.View(func(tx *bbolt.Tx) error {
			var err error
			n, err = tx.WriteTo(w)
			return err
		})
		return n, err
	}
	b, err := server.PrepareBackup(ctx, snapshot, bl, server.BackupOptions{
		TempDir: filepath.Dir(file), Version: version.Info().Version,
	})
	if err != nil {
		return server.BackupManifest{}, err
	}
	defer b.Close()
	if err := db.Close(); err != nil {
		return server.BackupManifest{}, fmt.Errorf("close database: %w", err)
	}
	err = writeArchive(file, key, func(tw *tar.Writer) error { return b.WriteTar(ctx, tw) })
	return b.Manifest(), err
}

// backupDatabase backs up the PostgreSQL store of cfg, read in one
// snapshot, with the bundle files of the data dir it refers to. The blob
// directory is opened without clearing the uploads of an otad running on
// it.
func backupDatabase(ctx context.Context, cfg *config, file string, key []byte) (server.BackupManifest, error) {
	st, err := openDatabase(ctx, cfg.DatabaseURL, false)
	if err != nil {
		return server.BackupManifest{}, err
	}
	defer st.Close()
	bl, err := blob.OpenFS(cfg.BlobDir())
	if err != nil {
		return server.BackupManifest{}, fmt.Errorf("bundle files of %s: %w (back up on the machine whose --data-dir holds them)", cfg.DataDir, err)
	}
	b, err := server.PrepareBackup(ctx, st.Backup, bl, server.BackupOptions{
		TempDir: filepath.Dir(file), Version: version.Info().Version,
	})
	if err != nil {
		return server.BackupManifest{}, err
	}
	defer b.Close()
	err = writeArchive(file, key, func(tw *tar.Writer) error { return b.WriteTar(ctx, tw) })
	return b.Manifest(), err
}

// backupOnline asks the otad running on the data dir for the archive and
// copies it to file, checking every entry against the manifest on the way.
func backupOnline(ctx context.Context, e *env, cfg *config, file string, key []byte, serverURL string) (server.BackupManifest, error) {
	if serverURL == "" {
		var err error
		if serverURL, err = runningURL(cfg); err != nil {
			return server.BackupManifest{}, err
		}
	}
	user, pw := e.getenv(envAdminUser), e.getenv(envAdminPassword)
	if user == "" || pw == "" {
		return server.BackupManifest{}, fmt.Errorf("otad is running on %s, so the backup must come from it: set %s and %s to a user's login so otad backup can ask %s",
			cfg.DataDir, envAdminUser, envAdminPassword, serverURL)
	}
	// No proxy and no overall timeout: the server is this host's otad or
	// one named by --server, and an archive may take minutes.
	c, err := ota.NewClient(serverURL, ota.WithHTTPClient(&http.Client{Transport: &http.Transport{Proxy: nil}}),
		ota.WithUserAgent("otad-backup/"+version.Info().Version))
	if err != nil {
		return server.BackupManifest{}, &usageError{fmt.Errorf("--server: %w", err)}
	}
	login, err := c.Login(ctx, user, pw)
	if err != nil {
		return server.BackupManifest{}, fmt.Errorf("log in to %s as %s: %w", serverURL, user, err)
	}
	c.Token = login.Token
	body, err := c.Backup(ctx)
	if err != nil {
		return server.BackupManifest{}, fmt.Errorf("ask %s for a backup: %w", serverURL, err)
	}
	defer body.Close()
	var m server.BackupManifest
	err = writeArchive(file, key, func(tw *tar.Writer) error {
		var err error
		m, err = copyArchive(tar.NewReader(body), tw)
		return err
	})
	if err != nil {
		return m, fmt.Errorf("backup from %s: %w", serverURL, err)
	}
	return m, nil
}

// runningURL is where the otad configured by cfg is reached: its listen
// address on loopback, or with HTTPS its public URL, since the
// certificate names that host and not 127.0.0.1.
func runningURL(cfg *config) (string, error) {
	if cfg.TLSCert == "" {
		return strings.TrimSuffix(readyzURL(cfg.Addr), "/readyz"), nil
	}
	if strings.HasPrefix(cfg.PublicURL, "https://") {
		return cfg.PublicURL, nil
	}
	return "", &usageError{fmt.Errorf("otad runs on %s and serves HTTPS: pass --server with the https:// URL its certificate names", cfg.DataDir)}
}

// copyArchive copies a server's archive entry by entry, checking each
// against the manifest, and fails unless every listed entry arrived whole.
func copyArchive(tr *tar.Reader, tw *tar.Writer) (server.BackupManifest, error) {
	ar := newArchiveReader(tr)
	copyEntry := func(h *tar.Header, r io.Reader) error {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: h.Name, Size: h.Size, Mode: 0o600,
			ModTime: h.ModTime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s: %w", h.Name, err)
		}
		if _, err := io.Copy(tw, r); err != nil {
			return fmt.Errorf("copy %s: %w", h.Name, err)
		}
		return nil
	}
	for first := true; ; first = false {
		ent, err := ar.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ar.m, err
		}
		if first {
			// next read the manifest itself; it leads the copy too.
			if err := copyEntry(ar.manifestHdr, bytes.NewReader(ar.rawManifest)); err != nil {
				return ar.m, err
			}
		}
		if ent.kind == entryKey {
			return ar.m, errors.New("the server sent a signing key; refusing an archive otad does not make")
		}
		if err := copyEntry(ent.hdr, ent.r); err != nil {
			return ar.m, err
		}
		if err := ent.verify(); err != nil {
			return ar.m, err
		}
	}
	return ar.m, ar.complete()
}

// writeArchive writes file through file.tmp: the entries fill, the key is
// appended when given, then the tar (and gzip) end, the data is synced and
// the name swapped in, so file is either the old one or complete.
func writeArchive(file string, key []byte, fill func(*tar.Writer) error) (err error) {
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create backup file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 256<<10)
	var w io.Writer = bw
	var gz *gzip.Writer
	if isGzipName(file) {
		// Bundles are zips already; a fast level saves the CPU the best
		// one would spend for next to nothing.
		gz, _ = gzip.NewWriterLevel(bw, gzip.BestSpeed)
		w = gz
	}
	tw := tar.NewWriter(w)
	if err := fill(tw); err != nil {
		return err
	}
	if key != nil {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: server.BackupKeyName, Size: int64(len(key)), Mode: 0o600,
			ModTime: time.Now().UTC().Truncate(time.Second), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write signing key: %w", err)
		}
		if _, err := tw.Write(key); err != nil {
			return fmt.Errorf("write signing key: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish backup file: %w", err)
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return fmt.Errorf("finish backup file: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write backup file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync backup file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close backup file: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("move backup file into place: %w", err)
	}
	if err := syncDir(filepath.Dir(file)); err != nil {
		return fmt.Errorf("backup written, but its directory entry may not survive a power cut: %w", err)
	}
	return nil
}

func isGzipName(name string) bool {
	return strings.HasSuffix(name, ".gz") || strings.HasSuffix(name, ".tgz")
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Kinds of archive entry.
type entryKind int

const (
	entryManifest entryKind = iota
	entryDB
	entryBlob
	entryKey
)

// classifyEntry tells what an archive path is, and refuses every other:
// absolute paths, "..", anything not in the layout. The returned sha is
// the blob's for entryBlob.
func classifyEntry(name string) (kind entryKind, sha string, err error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || path.Clean(name) != name ||
		name == ".." || strings.HasPrefix(name, "../") {
		return 0, "", fmt.Errorf("archive entry %q is not a clean relative path; the file is not an otad backup or was tampered with", clipName(name))
	}
	switch name {
	case server.BackupManifestName:
		return entryManifest, "", nil
	case server.BackupDBName:
		return entryDB, "", nil
	case server.BackupKeyName:
		return entryKey, "", nil
	}
	rest, ok := strings.CutPrefix(name, server.BackupBlobDir+"/")
	if ok {
		shard, key, ok := strings.Cut(rest, "/")
		if ok && isHexSHA(key) && shard == key[:2] {
			return entryBlob, key, nil
		}
	}
	return 0, "", fmt.Errorf("archive entry %q is not part of an otad backup", clipName(name))
}

func clipName(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

func isHexSHA(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// archiveReader walks an archive: the manifest first, then entries each
// checked against it, each at most once.
type archiveReader struct {
	tr *tar.Reader
	m  server.BackupManifest
	// rawManifest and manifestHdr are the manifest entry as read.
	rawManifest []byte
	manifestHdr *tar.Header
	want        map[string]int64 // manifest blobs not seen yet, by SHA-256
	seen        map[string]bool  // entry names seen
	db          bool
}

func newArchiveReader(tr *tar.Reader) *archiveReader {
	return &archiveReader{tr: tr, seen: map[string]bool{}}
}

// archiveEntry is one entry; read r to its end, then call verify.
type archiveEntry struct {
	hdr    *tar.Header
	kind   entryKind
	sha    string // of a blob
	r      io.Reader
	verify func() error
}

func (a *archiveReader) next() (*archiveEntry, error) {
	hdr, err := a.tr.Next()
	if errors.Is(err, io.EOF) {
		if a.want == nil {
			return nil, errors.New("the archive is empty or has no manifest; it is not an otad backup")
		}
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("read archive: %w (the file is cut short, damaged or not an otad backup)", err)
	}
	kind, sha, err := classifyEntry(hdr.Name)
	if err != nil {
		return nil, err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("archive entry %q is not a regular file; the file is not an otad backup or was tampered with", clipName(hdr.Name))
	}
	if hdr.Size < 0 {
		return nil, fmt.Errorf("archive entry %q has a negative size", hdr.Name)
	}
	if a.seen[hdr.Name] {
		return nil, fmt.Errorf("archive entry %q appears twice; the file was tampered with", hdr.Name)
	}
	a.seen[hdr.Name] = true
	if a.want == nil {
		if kind != entryManifest {
			return nil, fmt.Errorf("the archive starts with %q, not %s; it is not an otad backup", clipName(hdr.Name), server.BackupManifestName)
		}
		if err := a.readManifest(hdr); err != nil {
			return nil, err
		}
		return a.next()
	}
	ent := &archiveEntry{hdr: hdr, kind: kind, sha: sha}
	var want server.BackupFile
	switch kind {
	case entryManifest:
		return nil, errors.New("the archive has two manifests; the file was tampered with")
	case entryKey:
		if hdr.Size > maxKeyBytes {
			return nil, fmt.Errorf("archive entry %s is %d bytes, too large for a signing key", hdr.Name, hdr.Size)
		}
		ent.r = io.LimitReader(a.tr, hdr.Size)
		ent.verify = func() error { return nil }
		return ent, nil
	case entryDB:
		a.db = true
		want = a.m.DB
	case entryBlob:
		size, ok := a.want[sha]
		if !ok {
			return nil, fmt.Errorf("archive entry %s is not in the manifest; the file was tampered with", hdr.Name)
		}
		delete(a.want, sha)
		want = server.BackupFile{SHA256: sha, Size: size}
	}
	if hdr.Size != want.Size {
		return nil, fmt.Errorf("archive entry %s is %d bytes, the manifest says %d; the file was tampered with", hdr.Name, hdr.Size, want.Size)
	}
	ent.r, ent.verify = checked(a.tr, hdr.Name, want)
	return ent, nil
}

func (a *archiveReader) readManifest(hdr *tar.Header) error {
	if hdr.Size > maxManifestBytes {
		return fmt.Errorf("the manifest is %d bytes, more than %d; the file is not an otad backup", hdr.Size, maxManifestBytes)
	}
	raw, err := io.ReadAll(io.LimitReader(a.tr, hdr.Size))
	if err != nil {
		return fmt.Errorf("read manifest: %w (the file is cut short or damaged)", err)
	}
	var m server.BackupManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("read manifest: %w; the file is not an otad backup", err)
	}
	if m.Format > server.BackupFormat {
		return fmt.Errorf("the backup has format %d, made by otad %s; this otad reads up to format %d: restore it with a newer otad",
			m.Format, m.OtadVersion, server.BackupFormat)
	}
	if m.Format < 1 || !isHexSHA(m.DB.SHA256) || m.DB.Size <= 0 {
		return errors.New("the manifest has no format or no database; the file is not an otad backup")
	}
	a.want = make(map[string]int64, len(m.Blobs))
	for _, b := range m.Blobs {
		if !isHexSHA(b.SHA256) || b.Size < 0 {
			return fmt.Errorf("the manifest lists a bundle file %q of %d bytes; the file was tampered with", clipName(b.SHA256), b.Size)
		}
		a.want[b.SHA256] = b.Size
	}
	a.m, a.rawManifest, a.manifestHdr = m, raw, hdr
	return nil
}

// complete fails unless the database and every listed blob were read.
func (a *archiveReader) complete() error {
	if !a.db {
		return errors.New("the archive has no database; it is cut short or not an otad backup")
	}
	for sha := range a.want {
		return fmt.Errorf("the archive lacks %d of the bundle files its manifest lists (%s among them); it is cut short", len(a.want), sha)
	}
	return nil
}

// checked hashes r as it is read; verify compares the hash and size with f.
func checked(r io.Reader, name string, f server.BackupFile) (io.Reader, func() error) {
	h := sha256.New()
	var n int64
	cr := &countingReader{r: io.TeeReader(r, h), n: &n}
	return cr, func() error {
		if n != f.Size {
			return fmt.Errorf("archive entry %s has %d bytes, the manifest says %d; the file is cut short or was tampered with", name, n, f.Size)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
			return fmt.Errorf("archive entry %s has SHA-256 %s, the manifest says %s; the file is damaged or was tampered with", name, got, f.SHA256)
		}
		return nil
	}
}

type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// restoreSummary is what restore brought back.
type restoreSummary struct {
	manifest  server.BackupManifest
	blobBytes int64
	key       bool
	// records counts what went into the database (restoreDatabase).
	records *storecopy.Counts
}

// restoreDatabase restores a backup into the PostgreSQL store of cfg,
// which must hold no records, and the bundle files into the data dir,
// which must be empty: the archive is unpacked as restore does, the
// unpacked database copied into PostgreSQL in one transaction, then
// removed. On failure the data dir is left empty and the database as it
// was.
func restoreDatabase(ctx context.Context, cfg *config, file string) (sum restoreSummary, err error) {
	st, err := openDatabase(ctx, cfg.DatabaseURL, true)
	if err != nil {
		return sum, err
	}
	defer st.Close()
	have, err := st.Counts(ctx)
	if err != nil {
		return sum, err
	}
	if what := storecopy.Describe(have); what != "" {
		return sum, fmt.Errorf("the database %s is not empty (it holds %s); restore only into a new database", st.URL(), what)
	}
	createdDir := false
	if _, err := os.Stat(cfg.DataDir); errors.Is(err, fs.ErrNotExist) {
		createdDir = true
	}
	if sum, err = restore(ctx, cfg, file); err != nil {
		return sum, err
	}
	defer func() {
		if err == nil {
			return
		}
		_ = os.Remove(cfg.DBPath())
		_ = os.RemoveAll(cfg.BlobDir())
		if sum.key {
			_ = os.Remove(cfg.JWTKeyFile)
		}
		if createdDir {
			_ = os.Remove(cfg.DataDir)
		}
	}()
	src, err := bolt.Open(cfg.DBPath(), bolt.Options{Timeout: openTimeout})
	if err != nil {
		return sum, fmt.Errorf("open the restored records: %w", err)
	}
	defer src.Close()
	im, err := st.Import(ctx)
	if err != nil {
		return sum, err
	}
	defer im.Rollback(ctx) //nolint:errcheck // after Finish this does nothing
	c, err := storecopy.Copy(ctx, src, im, nil)
	if err != nil {
		return sum, fmt.Errorf("restore %s into the database: %w", file, err)
	}
	sum.records = &c
	if err := src.Close(); err != nil {
		return sum, err
	}
	if err := os.Remove(cfg.DBPath()); err != nil {
		return sum, fmt.Errorf("the records are in the database, but the unpacked copy %s stays: %w", cfg.DBPath(), err)
	}
	return sum, nil
}

// restore unpacks the archive at file into cfg's data dir, which must be
// empty or missing. On failure it removes what it wrote, leaving the
// directory as it found it.
func restore(ctx context.Context, cfg *config, file string) (sum restoreSummary, err error) {
	if err := checkEmptyDir(cfg.DataDir); err != nil {
		return sum, err
	}
	f, err := os.Open(file)
	if err != nil {
		return sum, fmt.Errorf("open backup: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return sum, fmt.Errorf("read backup %s: %w", file, err)
		}
		defer gz.Close()
		r = gz
	}

	createdDir := false
	if _, err := os.Stat(cfg.DataDir); errors.Is(err, fs.ErrNotExist) {
		createdDir = true
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return sum, fmt.Errorf("create data dir: %w", err)
	}
	var wroteKey bool
	dbTmp := cfg.DBPath() + ".restore"
	defer func() {
		if err == nil {
			return
		}
		// The dir was empty: everything in it now is ours.
		_ = os.Remove(dbTmp)
		_ = os.Remove(cfg.DBPath())
		_ = os.RemoveAll(cfg.BlobDir())
		if wroteKey {
			_ = os.Remove(cfg.JWTKeyFile)
		}
		if createdDir {
			_ = os.Remove(cfg.DataDir)
		}
	}()

	blobs, err := blob.NewFS(cfg.BlobDir())
	if err != nil {
		return sum, fmt.Errorf("create bundle directory: %w", err)
	}
	ar := newArchiveReader(tar.NewReader(r))
	for {
		ent, err := ar.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sum, fmt.Errorf("restore %s: %w", file, err)
		}
		switch ent.kind {
		case entryDB:
			err = writeNewFile(dbTmp, ent.r, 0o600)
		case entryKey:
			wroteKey, err = restoreKey(cfg.JWTKeyFile, ent.r)
		case entryBlob:
			var info blob.Info
			info, err = blobs.Put(ctx, ent.r, 0)
			if err == nil && info.SHA256 != ent.sha {
				err = fmt.Errorf("bundle file %s holds bytes with SHA-256 %s; the backup is damaged or was tampered with", ent.sha, info.SHA256)
			}
			sum.blobBytes += ent.hdr.Size
		}
		if err == nil {
			err = ent.verify()
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w (the backup file is cut short)", err)
		}
		if err != nil {
			return sum, fmt.Errorf("restore %s: %w", file, err)
		}
		sum.key = sum.key || ent.kind == entryKey
	}
	if err := ar.complete(); err != nil {
		return sum, fmt.Errorf("restore %s: %w", file, err)
	}
	sum.manifest = ar.m
	if err := os.Rename(dbTmp, cfg.DBPath()); err != nil {
		return sum, fmt.Errorf("move database into place: %w", err)
	}
	if err := syncDir(cfg.DataDir); err != nil {
		return sum, fmt.Errorf("sync data dir: %w", err)
	}
	if err := checkRestored(ctx, cfg, blobs); err != nil {
		return sum, fmt.Errorf("restore %s: %w", file, err)
	}
	return sum, nil
}

// checkEmptyDir refuses a data dir with anything in it.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read data dir: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("data dir %s is not empty (it holds %s); restore only into an empty or new directory, e.g. --data-dir %s.restored",
			dir, entries[0].Name(), strings.TrimRight(dir, "/"))
	}
	return nil
}

// writeNewFile writes r to a new file at name and syncs it.
func writeNewFile(name string, r io.Reader, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// restoreKey writes the backup's signing key to path, which must not
// exist: replacing a key would break the tokens of another server.
func restoreKey(path string, r io.Reader) (bool, error) {
	if _, err := os.Lstat(path); err == nil {
		return false, fmt.Errorf("the backup holds a signing key but %s exists; remove it, or point --jwt-key-file elsewhere", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("create directory of %s: %w", path, err)
	}
	if err := writeNewFile(path, r, 0o600); err != nil {
		return true, err
	}
	return true, nil
}

// checkRestored opens the restored database, checks its pages, and checks
// that every bundle it refers to has its file.
func checkRestored(ctx context.Context, cfg *config, blobs blob.Store) error {
	st, err := bolt.Open(cfg.DBPath(), bolt.Options{Timeout: openTimeout})
	if err != nil {
		return fmt.Errorf("open restored database: %w", err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		return err
	}
	refs, err := st.ReferencedBlobs(ctx)
	if err != nil {
		return err
	}
	for sha := range refs {
		if _, err := blobs.Stat(ctx, sha); err != nil {
			return fmt.Errorf("the restored database refers to bundle file %s, which the backup lacks: %w", sha, err)
		}
	}
	return nil
}

// formatBytes is a size for people.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
