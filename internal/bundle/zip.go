// Package bundle builds, checks and validates the zip files that carry a
// Capacitor web build to devices running @capgo/capacitor-updater.
//
// Zip makes deterministic archives: the same files give the same bytes, and
// so the same SHA-256, on every machine, which makes "already uploaded"
// detection exact. Validate decides, from the central directory alone,
// whether the updater plugin would accept a zip (protocol §5). CheckWebDir
// repeats the checks @capgo/cli runs on a web build before zipping it.
package bundle

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Fixed header values that make the archive independent of the machine.
const (
	// dosDate1980 is 1980-01-01 in MS-DOS date format (the earliest it can
	// express); the time field stays 0 (00:00:00).
	dosDate1980 = 1<<5 | 1
	// unixCreator|20 says "made by Unix, zip 2.0": external attributes then
	// carry Unix mode bits, which extractors use for permissions.
	creatorVersion = 3<<8 | 20
	readerVersion  = 20
	fileAttrs      = uint32(0o100644) << 16
	dirAttrs       = uint32(0o040755)<<16 | 0x10 // 0x10: MS-DOS directory bit
	flagUTF8       = 0x800

	// maxFileSize keeps every entry out of zip64, which the extractors on
	// devices do not all read.
	maxFileSize = math.MaxUint32 - 1
	// defaultLevel matches zip(1) and flate's own default.
	defaultLevel = 6
)

// ZipOptions tunes Zip. The zero value is ready to use.
type ZipOptions struct {
	// Level is the flate compression level, 1-9; 0 means the default (6).
	Level int
	// Workers is how many files are compressed at once; 0 means
	// runtime.GOMAXPROCS.
	Workers int
}

// Result describes a written zip.
type Result struct {
	// SHA256 is the lowercase hex SHA-256 of the zip bytes, the checksum the
	// updater plugin verifies.
	SHA256 string
	// Size is the length of the zip in bytes.
	Size int64
	// Files is the number of file entries (folders not counted).
	Files int
	// Uncompressed is the total size of the files.
	Uncompressed int64
}

// entry is one member of the archive, found on disk.
type entry struct {
	name string // slash path inside the zip; folders end in "/"
	path string // file to read (symlinks already resolved)
	size int64
	dir  bool
}

// Zip writes dir's contents as a deterministic zip to w: entries sorted by
// path, folders as explicit entries, fixed time and modes, no extra fields.
// Formats that are compressed already (png, jpg, woff2, …) and files that
// deflate does not shrink are stored rather than deflated. The bytes depend
// only on the file names and contents, and on the flate implementation of
// the Go release that built the binary.
//
// It skips .DS_Store files and __MACOSX folders and refuses symlinks that
// leave dir, symlinks to folders and anything that is not a regular file.
func Zip(ctx context.Context, dir string, w io.Writer, opts ZipOptions) (Result, error) {
	level, workers, err := opts.normalize()
	if err != nil {
		return Result{}, err
	}
	entries, err := collect(dir)
	if err != nil {
		return Result{}, err
	}
	return writeZip(ctx, entries, w, level, workers)
}

// ZipFile is Zip into the file out. It writes a temporary file next to out
// and renames it into place, so out is either the old file or the complete
// new zip, never a partial one. The file gets mode 0644.
func ZipFile(ctx context.Context, dir, out string, opts ZipOptions) (Result, error) {
	if inside, err := isInside(dir, out); err != nil {
		return Result{}, err
	} else if inside {
		return Result{}, fmt.Errorf("output %s is inside the folder being zipped (%s); write it somewhere else", out, dir)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return Result{}, fmt.Errorf("create zip: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 256<<10)
	res, err := Zip(ctx, dir, bw, opts)
	if err != nil {
		return Result{}, err
	}
	if err := bw.Flush(); err != nil {
		return Result{}, fmt.Errorf("write %s: %w", out, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return Result{}, fmt.Errorf("write %s: %w", out, err)
	}
	if err := tmp.Sync(); err != nil {
		return Result{}, fmt.Errorf("write %s: %w", out, err)
	}
	if err := tmp.Close(); err != nil {
		return Result{}, fmt.Errorf("write %s: %w", out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return Result{}, fmt.Errorf("write %s: %w", out, err)
	}
	done = true
	return res, nil
}

func (o ZipOptions) normalize() (level, workers int, err error) {
	level = o.Level
	switch {
	case level == 0:
		level = defaultLevel
	case level < flate.BestSpeed || level > flate.BestCompression:
		return 0, 0, fmt.Errorf("invalid compression level %d: use 1-9, or 0 for the default", o.Level)
	}
	workers = o.Workers
	switch {
	case workers == 0:
		workers = runtime.GOMAXPROCS(0)
	case workers < 0:
		return 0, 0, fmt.Errorf("invalid worker count %d: use a positive number, or 0 for one per CPU", o.Workers)
	}
	return level, workers, nil
}

// isInside reports whether path is dir or lies below it.
func isInside(dir, path string) (bool, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return false, fmt.Errorf("resolve %s: %w", dir, err)
	}
	if real, err := filepath.EvalSymlinks(absDir); err == nil {
		absDir = real
	}
	absPath, err := filepath.Abs(path)
	if err != nil {
		return false, fmt.Errorf("resolve %s: %w", path, err)
	}
	// The output file may not exist yet: resolve its folder instead.
	if real, err := filepath.EvalSymlinks(filepath.Dir(absPath)); err == nil {
		absPath = filepath.Join(real, filepath.Base(absPath))
	}
	return within(absDir, absPath), nil
}

// within reports whether the absolute, clean path is root or below it.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// skipName reports whether a file or folder is macOS litter that never
// belongs in a bundle.
func skipName(name string) bool {
	return name == ".DS_Store" || name == "__MACOSX"
}

// collect lists what goes into the zip, sorted by name.
func collect(dir string) ([]entry, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", dir, err)
	}
	// Walk the real folder: WalkDir would not descend into a root that is
	// itself a symlink, and the inside check needs resolved paths.
	root, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("open web folder: %w", err)
	}
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("open web folder: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", dir)
	}

	var entries []entry
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		if p == root {
			return nil
		}
		if skipName(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		name := filepath.ToSlash(rel)
		if err := checkDiskName(name); err != nil {
			return err
		}
		switch t := d.Type(); {
		case t.IsDir():
			entries = append(entries, entry{name: name + "/", dir: true})
		case t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			entries = append(entries, entry{name: name, path: p, size: fi.Size()})
		case t&fs.ModeSymlink != 0:
			e, err := resolveLink(root, p, name)
			if err != nil {
				return err
			}
			entries = append(entries, e)
		default:
			return fmt.Errorf("%s is not a regular file (%v): a bundle can only hold files and folders", p, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.size > maxFileSize {
			return nil, fmt.Errorf("%s is %d bytes: files of 4 GiB or more cannot go in a bundle", e.path, e.size)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, nil
}

// checkDiskName refuses names the updater plugin would refuse (protocol
// §5.2) or could not read back.
func checkDiskName(name string) error {
	switch {
	case strings.ContainsRune(name, '\\'):
		return fmt.Errorf("file name %q contains a backslash: devices refuse such bundles (windows_path_fail); rename it", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("file name %q is not valid UTF-8; rename it", name)
	}
	return nil
}

// resolveLink turns a symlink into the file it points to, when that file
// is inside root. The zip then holds a copy of the content: devices do not
// extract symlinks consistently (protocol §5.1).
func resolveLink(root, p, name string) (entry, error) {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return entry{}, fmt.Errorf("symlink %s is broken: %w", p, err)
	}
	if !within(root, target) {
		return entry{}, fmt.Errorf("symlink %s points outside the web folder (to %s): copy the file in instead", p, target)
	}
	fi, err := os.Stat(target)
	if err != nil {
		return entry{}, fmt.Errorf("symlink %s: %w", p, err)
	}
	if fi.IsDir() {
		return entry{}, fmt.Errorf("symlink %s points to a folder: replace it with a real folder", p)
	}
	if !fi.Mode().IsRegular() {
		return entry{}, fmt.Errorf("symlink %s points to %s, which is not a regular file", p, target)
	}
	return entry{name: name, path: target, size: fi.Size()}, nil
}

// memLimit is the largest file compressed in memory. Bigger files are
// compressed into a temporary file so memory stays bounded by
// window × 2 × memLimit whatever the bundle holds. A variable only so tests
// can reach the temporary-file path with small files.
var memLimit int64 = 4 << 20

// compressed is one file ready to be written: its payload is in mem, in
// the temporary file tmp, or (stored big files) re-read from src.
type compressed struct {
	method uint16
	crc    uint32
	size   int64
	csize  int64
	mem    *bytes.Buffer
	tmp    *os.File
	src    string
	err    error
}

// release returns the buffer to the pool and removes the temporary file.
func (c *compressed) release() {
	if c.mem != nil {
		putBuf(c.mem)
		c.mem = nil
	}
	if c.tmp != nil {
		_ = c.tmp.Close()
		_ = os.Remove(c.tmp.Name())
		c.tmp = nil
	}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	if int64(b.Cap()) > 2*memLimit {
		return // let an unusually large buffer go rather than pin it
	}
	b.Reset()
	bufPool.Put(b)
}

// writeZip compresses entries on workers goroutines and writes them to w in
// order. A window limits how many compressed files wait to be written.
func writeZip(ctx context.Context, entries []entry, w io.Writer, level, workers int) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	results := make([]chan *compressed, len(entries))
	for i, e := range entries {
		if !e.dir {
			results[i] = make(chan *compressed, 1) // buffered: workers never block on the writer
		}
	}
	jobs := make(chan int)
	window := make(chan struct{}, 2*workers)

	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(jobs)
		for i, e := range entries {
			if e.dir {
				continue
			}
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	})
	for range workers {
		wg.Go(func() {
			c, err := flate.NewWriter(nil, level)
			for i := range jobs {
				if err != nil {
					results[i] <- &compressed{err: fmt.Errorf("start compressor: %w", err)}
					continue
				}
				results[i] <- compressFile(ctx, c, entries[i])
			}
		})
	}

	res, err := writeEntries(ctx, entries, results, window, w)
	if err != nil {
		cancel()
		wg.Wait()
		// Free what the workers finished after the writer stopped.
		for _, ch := range results {
			if ch == nil {
				continue
			}
			select {
			case c := <-ch:
				c.release()
			default:
			}
		}
		return Result{}, err
	}
	wg.Wait()
	return res, nil
}

// writeEntries is the single writer: it takes the compressed files in
// order and streams the archive through SHA-256.
func writeEntries(ctx context.Context, entries []entry, results []chan *compressed, window chan struct{}, w io.Writer) (Result, error) {
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	zw := zip.NewWriter(cw)
	var res Result
	for i, e := range entries {
		fh := &zip.FileHeader{
			Name: e.name,
			//lint:ignore SA1019 Modified would add an extended timestamp field, changing every archive's bytes (TestZipGolden): the DOS date alone is meant
			ModifiedDate:   dosDate1980,
			CreatorVersion: creatorVersion,
			ReaderVersion:  readerVersion,
		}
		if !isASCII(e.name) {
			fh.Flags |= flagUTF8
		}
		if e.dir {
			fh.ExternalAttrs = dirAttrs
			if _, err := zw.CreateRaw(fh); err != nil {
				return Result{}, fmt.Errorf("write zip: %w", err)
			}
			continue
		}
		var c *compressed
		select {
		case c = <-results[i]:
		case <-ctx.Done():
			return Result{}, fmt.Errorf("zip %s: %w", e.path, context.Cause(ctx))
		}
		err := writeFile(zw, fh, c)
		c.release()
		<-window
		if err != nil {
			return Result{}, err
		}
		res.Files++
		res.Uncompressed += c.size
	}
	if err := zw.Close(); err != nil {
		return Result{}, fmt.Errorf("write zip: %w", err)
	}
	res.Size = cw.n
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	return res, nil
}

func writeFile(zw *zip.Writer, fh *zip.FileHeader, c *compressed) error {
	if c.err != nil {
		return c.err
	}
	fh.ExternalAttrs = fileAttrs
	fh.Method = c.method
	fh.CRC32 = c.crc
	fh.CompressedSize64 = uint64(c.csize)
	fh.UncompressedSize64 = uint64(c.size)
	fw, err := zw.CreateRaw(fh)
	if err != nil {
		return fmt.Errorf("write zip: %w", err)
	}
	switch {
	case c.mem != nil:
		_, err = fw.Write(c.mem.Bytes())
	case c.tmp != nil:
		if _, err = c.tmp.Seek(0, io.SeekStart); err == nil {
			_, err = io.Copy(fw, c.tmp)
		}
	default:
		err = copyStored(fw, c)
	}
	if err != nil {
		return fmt.Errorf("write zip entry %s: %w", fh.Name, err)
	}
	return nil
}

// copyStored copies a big stored file a second time, and checks that it is
// the file that was measured: the header is already written.
func copyStored(w io.Writer, c *compressed) error {
	f, err := os.Open(c.src)
	if err != nil {
		return err
	}
	defer f.Close()
	h := crc32.NewIEEE()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(f, c.size+1))
	if err != nil {
		return err
	}
	if n != c.size || h.Sum32() != c.crc {
		return fmt.Errorf("%s changed while it was being zipped; try again", c.src)
	}
	return nil
}

// compressFile reads one file and deflates it with the worker's own
// compressor (reset per file: a new one per file is much slower). It keeps
// the raw bytes instead when deflate does not make them smaller.
func compressFile(ctx context.Context, fw *flate.Writer, e entry) *compressed {
	if err := ctx.Err(); err != nil {
		return &compressed{err: err}
	}
	f, err := os.Open(e.path)
	if err != nil {
		return &compressed{err: fmt.Errorf("read file: %w", err)}
	}
	defer f.Close()
	if e.size > memLimit {
		return compressBig(ctx, fw, f, e)
	}

	raw := getBuf()
	if _, err := raw.ReadFrom(f); err != nil {
		putBuf(raw)
		return &compressed{err: fmt.Errorf("read %s: %w", e.path, err)}
	}
	c := &compressed{crc: crc32.ChecksumIEEE(raw.Bytes()), size: int64(raw.Len())}
	if int64(raw.Len()) > maxFileSize {
		putBuf(raw)
		return &compressed{err: fmt.Errorf("%s grew past 4 GiB while it was being zipped", e.path)}
	}
	if precompressed(e.name) {
		c.method, c.csize, c.mem = zip.Store, int64(raw.Len()), raw
		return c
	}
	out := getBuf()
	fw.Reset(out)
	_, err = fw.Write(raw.Bytes())
	if err == nil {
		err = fw.Close()
	}
	if err != nil {
		putBuf(raw)
		putBuf(out)
		return &compressed{err: fmt.Errorf("compress %s: %w", e.path, err)}
	}
	if out.Len() < raw.Len() {
		c.method, c.csize, c.mem = zip.Deflate, int64(out.Len()), out
		putBuf(raw)
	} else {
		c.method, c.csize, c.mem = zip.Store, int64(raw.Len()), raw
		putBuf(out)
	}
	return c
}

// precompressedExt are formats that are compressed already: deflate would
// spend CPU to gain next to nothing, so they are stored without trying.
var precompressedExt = map[string]bool{
	".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".webp": true, ".avif": true,
	".woff": true, ".woff2": true, ".gz": true, ".br": true, ".zst": true, ".zip": true,
	".mp3": true, ".mp4": true, ".m4a": true, ".webm": true, ".ogg": true,
}

func precompressed(name string) bool {
	return precompressedExt[strings.ToLower(path.Ext(name))]
}

// compressBig deflates a large file into a temporary file.
func compressBig(ctx context.Context, fw *flate.Writer, f *os.File, e entry) *compressed {
	if precompressed(e.name) {
		// Only measure it now; the writer copies it from the source.
		h := crc32.NewIEEE()
		n, err := io.Copy(h, &ctxReader{ctx: ctx, r: f})
		if err != nil {
			return &compressed{err: fmt.Errorf("read %s: %w", e.path, err)}
		}
		if n > maxFileSize {
			return &compressed{err: fmt.Errorf("%s grew past 4 GiB while it was being zipped", e.path)}
		}
		return &compressed{method: zip.Store, crc: h.Sum32(), size: n, csize: n, src: e.path}
	}
	tmp, err := os.CreateTemp("", "otactl-zip-*")
	if err != nil {
		return &compressed{err: fmt.Errorf("compress %s: %w", e.path, err)}
	}
	c := &compressed{tmp: tmp}
	fail := func(err error) *compressed {
		c.release()
		return &compressed{err: err}
	}
	tw := &countWriter{w: bufio.NewWriterSize(tmp, 64<<10)}
	fw.Reset(tw)
	h := crc32.NewIEEE()
	n, err := io.Copy(io.MultiWriter(fw, h), &ctxReader{ctx: ctx, r: f})
	if err == nil {
		err = fw.Close()
	}
	if err == nil {
		err = tw.w.(*bufio.Writer).Flush()
	}
	if err != nil {
		return fail(fmt.Errorf("compress %s: %w", e.path, err))
	}
	if n > maxFileSize {
		return fail(fmt.Errorf("%s grew past 4 GiB while it was being zipped", e.path))
	}
	c.crc, c.size = h.Sum32(), n
	if tw.n < n {
		c.method, c.csize = zip.Deflate, tw.n
		return c
	}
	// Incompressible: drop the temporary copy and read the source again
	// at write time rather than keep both.
	c.release()
	return &compressed{method: zip.Store, crc: c.crc, size: n, csize: n, src: e.path}
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// WebFile is one file Zip puts in a bundle: its slash path inside the zip
// and the file on disk it is read from (symlinks resolved).
type WebFile struct {
	Name string
	Path string
	Size int64
}

// Files lists the files Zip would put in a zip of dir, sorted by name,
// with the same names and the same refusals, so a delta release lists
// exactly what its zip holds.
func Files(dir string) ([]WebFile, error) {
	entries, err := collect(dir)
	if err != nil {
		return nil, err
	}
	out := make([]WebFile, 0, len(entries))
	for _, e := range entries {
		if !e.dir {
			out = append(out, WebFile{Name: e.name, Path: e.path, Size: e.size})
		}
	}
	return out, nil
}
