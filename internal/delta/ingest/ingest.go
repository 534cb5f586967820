// Package ingest stores and checks the files of delta releases as otad
// receives them: each uploaded file form is verified before any record
// names it (a Brotli form must decode to the bytes its SHA-256 names), a
// manifest's files are resolved to the forms the app holds, and a plain
// release's manifest is compared with its zip, so a device gets the same
// files whether it installs the zip or the manifest.
package ingest

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Errors of Put, matched with errors.Is; each is wrapped with what was
// wrong.
var (
	// ErrMismatch: the bytes are not those the SHA-256 names.
	ErrMismatch = errors.New("content does not match its SHA-256")
	// ErrBadBrotli: a Brotli form does not decode (damaged, truncated, or
	// followed by other bytes).
	ErrBadBrotli = errors.New("not a valid Brotli stream")
	// ErrBadEncrypted: an encrypted form cannot be AES-CBC ciphertext
	// (empty, or not whole 16-byte blocks).
	ErrBadEncrypted = errors.New("not AES-CBC ciphertext")
)

// Stored is what Put stored: the record to keep and the blobs it wrote
// that were not there before. When Put fails, the caller removes those
// (unless a concurrent upload stored the same bytes: see the server's
// discardBlob); Put does not, since it cannot know.
type Stored struct {
	File     store.DeltaFile
	NewBlobs []string
}

// Put stores one uploaded form of a file of app in bl, and verifies it:
//
//   - ota.EncodingRaw: the bytes must hash to sum.
//   - ota.EncodingBrotli: the bytes are stored as the Brotli form, and
//     decoded into the raw form, which must hash to sum; both are kept, as
//     iOS devices are sent known files raw.
//   - ota.EncodingEncrypted: ciphertext of an encrypted release, which
//     must hash to sum and be whole AES blocks; nothing more can be
//     checked without the key.
//
// limit bounds each form (decoded included, so a Brotli bomb stops
// there). On failure the result still lists the new blobs.
func Put(ctx context.Context, bl blob.Store, appID, sum, encoding string, r io.Reader, limit int64) (Stored, error) {
	var out Stored
	fail := func(err error) (Stored, error) {
		return Stored{NewBlobs: out.NewBlobs}, err
	}
	put := func(r io.Reader) (blob.Info, error) {
		info, err := bl.Put(ctx, r, limit)
		if err == nil && info.New {
			out.NewBlobs = append(out.NewBlobs, info.SHA256)
		}
		return info, err
	}
	out.File = store.DeltaFile{AppID: appID, SHA256: sum}
	switch encoding {
	case ota.EncodingRaw, ota.EncodingEncrypted:
		info, err := put(r)
		if err != nil {
			return fail(err)
		}
		if info.SHA256 != sum {
			return fail(fmt.Errorf("%w: the %d bytes sent hash to %s, not %s", ErrMismatch, info.Size, info.SHA256, sum))
		}
		out.File.Size = info.Size
		if encoding == ota.EncodingEncrypted {
			if info.Size == 0 || info.Size%16 != 0 {
				return fail(fmt.Errorf("%w: %d bytes", ErrBadEncrypted, info.Size))
			}
			out.File.Encrypted = true
		}
		return out, nil
	case ota.EncodingBrotli:
		br, err := put(r)
		if err != nil {
			return fail(err)
		}
		content, _, err := bl.Open(ctx, br.SHA256)
		if err != nil {
			return fail(fmt.Errorf("read back the Brotli form: %w", err))
		}
		defer content.Close()
		raw, err := put(&brotliCheck{r: delta.NewBrotliReader(content)})
		if err != nil {
			var bad *brotliError
			switch {
			case errors.As(err, &bad):
				return fail(fmt.Errorf("%w: %v", ErrBadBrotli, bad.err))
			case errors.Is(err, blob.ErrTooLarge):
				return fail(fmt.Errorf("%w: it decodes to more than %d bytes", ErrBadBrotli, limit))
			}
			return fail(err)
		}
		if raw.SHA256 != sum {
			return fail(fmt.Errorf("%w: the Brotli form decodes to %d bytes that hash to %s, not %s", ErrMismatch, raw.Size, raw.SHA256, sum))
		}
		out.File.Size, out.File.Br, out.File.BrSize = raw.Size, br.SHA256, br.Size
		return out, nil
	}
	return Stored{}, fmt.Errorf("unknown encoding %q", encoding)
}

// brotliCheck marks the decoder's errors, so Put tells a bad stream from
// a failing disk.
type brotliCheck struct{ r io.Reader }

type brotliError struct{ err error }

func (e *brotliError) Error() string { return e.err.Error() }
func (e *brotliError) Unwrap() error { return e.err }

func (b *brotliCheck) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, &brotliError{err: err}
	}
	return n, err
}

// Problems lists what is wrong with a manifest's files, for one answer.
type Problems struct{ list []string }

func (p *Problems) add(format string, args ...any) {
	if len(p.list) < 20 {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	} else if len(p.list) == 20 {
		p.list = append(p.list, "and more")
	}
}

// Err returns the problems as a *delta.ManifestError, nil without any.
func (p *Problems) Err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &delta.ManifestError{Problems: p.list}
}

// Resolve fills in the stored forms of a manifest's files from the app's
// records (recs, by SHA-256 or, for an encrypted release, by the forms'
// blob keys). missing lists the record keys otad does not hold, which
// the client is to upload; err the other problems: a plain file stored
// with another size, a form uploaded as the other kind, a file named .br
// without a Brotli form. files must have passed delta.CheckManifest.
func Resolve(files []ota.ManifestFile, recs map[string]store.DeltaFile, encrypted bool) (missing []string, err error) {
	var p Problems
	asked := map[string]bool{}
	need := func(key string) {
		if !asked[key] {
			asked[key] = true
			missing = append(missing, key)
		}
	}
	for i := range files {
		f := &files[i]
		if encrypted {
			for _, form := range []struct {
				key  string
				size *int64
			}{{f.Raw, &f.RawSize}, {f.Br, &f.BrSize}} {
				if form.key == "" {
					continue
				}
				r, ok := recs[form.key]
				switch {
				case !ok:
					need(form.key)
				case !r.Encrypted:
					p.add("file %q: %s was uploaded as a plain file, not as an encrypted form", f.Path, form.key)
				default:
					*form.size = r.Size
				}
			}
			continue
		}
		r, ok := recs[f.SHA256]
		switch {
		case !ok:
			need(f.SHA256)
			continue
		case r.Encrypted:
			p.add("file %q: %s was uploaded as an encrypted form, but this release is plain", f.Path, f.SHA256)
			continue
		case r.Size != f.Size:
			p.add("file %q is %d bytes in the manifest, but the stored file with its sha256 has %d", f.Path, f.Size, r.Size)
			continue
		}
		f.Raw, f.RawSize = f.SHA256, r.Size
		f.Br, f.BrSize = r.Br, r.BrSize
		if delta.NeedsBrotli(f.Path) && f.Br == "" {
			p.add("file %q ends in .br, so devices only take it Brotli-compressed; upload it with encoding=br", f.Path)
		}
	}
	return missing, p.Err()
}

// Keys lists the record keys Resolve needs for files: their SHA-256, or
// for an encrypted release the blob keys of their forms.
func Keys(files []ota.ManifestFile, encrypted bool) []string {
	keys := make([]string, 0, len(files))
	for _, f := range files {
		if !encrypted {
			keys = append(keys, f.SHA256)
			continue
		}
		keys = append(keys, f.Raw)
		if f.Br != "" {
			keys = append(keys, f.Br)
		}
	}
	return keys
}

// CheckZip compares a plain release's manifest with its zip, which
// bundle.Validate accepted (wrapper is its Report.Wrapper): the zip must
// hold exactly the manifest's files, with the same contents. A device then
// installs the same bundle whichever it downloads. It reads and hashes
// every file of the zip once.
func CheckZip(ctx context.Context, r io.ReaderAt, size int64, wrapper string, files []ota.ManifestFile) error {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("open the zip: %w", err)
	}
	want := make(map[string]*ota.ManifestFile, len(files))
	for i := range files {
		want[files[i].Path] = &files[i]
	}
	prefix := ""
	if wrapper != "" {
		prefix = wrapper + "/"
	}
	var p Problems
	seen := make(map[string]bool, len(files))
	buf := make([]byte, 64<<10)
	for _, zf := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasSuffix(zf.Name, "/") || zf.Mode().IsDir() {
			continue
		}
		name := path.Clean(zf.Name)
		if prefix != "" {
			name = strings.TrimPrefix(name, prefix)
		}
		mf := want[name]
		if mf == nil {
			p.add("the zip has %q, which the manifest does not list", name)
			continue
		}
		seen[name] = true
		rc, err := zf.Open()
		if err != nil {
			p.add("the zip's %q cannot be read: %v", name, err)
			continue
		}
		h := sha256.New()
		n, err := io.CopyBuffer(h, rc, buf)
		rc.Close()
		if err != nil {
			p.add("the zip's %q cannot be read: %v", name, err)
			continue
		}
		if sum := hex.EncodeToString(h.Sum(nil)); sum != mf.SHA256 || n != mf.Size {
			p.add("the zip's %q (%d bytes, sha256 %s) differs from the manifest's (%d bytes, sha256 %s)", name, n, sum, mf.Size, mf.SHA256)
		}
	}
	for _, f := range files {
		if !seen[f.Path] {
			p.add("the manifest lists %q, which the zip does not have", f.Path)
		}
	}
	return p.Err()
}
