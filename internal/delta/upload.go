package delta

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/pkg/ota"
)

// DefaultUploadWorkers is how many files UploadFiles sends at once: enough
// to hide a round trip per file, few enough not to crowd a small server.
const DefaultUploadWorkers = 8

// UploadOptions says which files of which app to upload, and how.
type UploadOptions struct {
	Client *ota.Client
	AppID  string
	Files  []File // from Scan
	// Session, when set, encrypts every file form with the release's
	// session (the zip's too), as an encrypted release needs. Encrypted
	// forms differ per release, so all of them are uploaded.
	Session *bundle.Session
	// Workers is how many files are compressed and sent at once (0:
	// DefaultUploadWorkers).
	Workers int
	// Progress, when set, is called as files are done with the bytes of
	// original content handled so far and in all; files the server holds
	// already count at once.
	Progress func(done, total int64)
}

// UploadResult says what UploadFiles did.
type UploadResult struct {
	// Manifest is the release's manifest, to send with its zip.
	Manifest []ota.ManifestFile
	// Uploaded counts the forms sent and their bytes; Reused the files
	// the server held already.
	Uploaded      int
	UploadedBytes int64
	Reused        int
}

// UploadFiles stores the files of a delta release on the server: for a
// plain release it asks which files the app lacks and sends only those,
// Brotli-compressed when Compress says so; for an encrypted one it sends
// every file's encrypted raw form and, when compressible, its encrypted
// Brotli form. It returns the manifest to upload with the release.
func UploadFiles(ctx context.Context, o UploadOptions) (UploadResult, error) {
	var res UploadResult
	if o.Workers <= 0 {
		o.Workers = DefaultUploadWorkers
	}
	var total int64
	for _, f := range o.Files {
		total += f.Size
	}
	var done atomic.Int64
	progress := func(n int64) {
		if o.Progress != nil {
			o.Progress(done.Add(n), total)
		}
	}
	// One upload per content: files with the same bytes share it.
	first := map[string]int{}
	var unique []int
	needsBr := map[string]bool{}
	sizeOf := map[string]int64{} // bytes of every file with that content
	for i, f := range o.Files {
		sizeOf[f.SHA256] += f.Size
		if NeedsBrotli(f.Path) {
			needsBr[f.SHA256] = true
		}
		if _, ok := first[f.SHA256]; !ok {
			first[f.SHA256] = len(unique)
			unique = append(unique, i)
		}
	}
	forms := make([]formKeys, len(unique))
	var todo []int // indexes into unique
	if o.Session == nil {
		sums := make([]string, len(unique))
		var brSums []string
		for j, i := range unique {
			sums[j] = o.Files[i].SHA256
			if needsBr[sums[j]] {
				brSums = append(brSums, sums[j])
			}
		}
		missing, err := o.Client.MissingFiles(ctx, o.AppID, sums, brSums)
		if err != nil {
			return res, fmt.Errorf("ask which files %s lacks: %w", o.AppID, err)
		}
		lack := make(map[string]bool, len(missing))
		for _, m := range missing {
			lack[m] = true
		}
		for j, i := range unique {
			f := o.Files[i]
			if lack[f.SHA256] {
				todo = append(todo, j)
			} else {
				res.Reused++
			}
		}
		// Files already there are done.
		var held int64
		for _, f := range o.Files {
			if !lack[f.SHA256] {
				held += f.Size
			}
		}
		progress(held)
	} else {
		for j := range unique {
			todo = append(todo, j)
		}
	}
	var sent, sentBytes atomic.Int64
	err := Parallel(ctx, len(todo), o.Workers, func(k int) error {
		j := todo[k]
		f := o.Files[unique[j]]
		keys, n, b, err := uploadOne(ctx, o, f, needsBr[f.SHA256])
		if err != nil {
			return err
		}
		forms[j] = keys
		sent.Add(int64(n))
		sentBytes.Add(b)
		progress(sizeOf[f.SHA256]) // every file with these bytes is done
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Uploaded, res.UploadedBytes = int(sent.Load()), sentBytes.Load()
	res.Manifest = make([]ota.ManifestFile, len(o.Files))
	for i, f := range o.Files {
		mf := ota.ManifestFile{Path: f.Path, SHA256: f.SHA256, Size: f.Size}
		if o.Session != nil {
			k := forms[first[f.SHA256]]
			mf.Raw, mf.Br, mf.FileHash = k.raw, k.br, k.fileHash
		}
		res.Manifest[i] = mf
	}
	return res, nil
}

// formKeys are the blob keys of an encrypted file's forms, and its
// encrypted hash.
type formKeys struct{ raw, br, fileHash string }

// uploadOne sends the forms of one file and returns, for an encrypted
// release, their keys; n and bytes count what was sent.
func uploadOne(ctx context.Context, o UploadOptions, f File, mustBr bool) (keys formKeys, n int, sent int64, err error) {
	data, err := os.ReadFile(f.Disk)
	if err != nil {
		return keys, 0, 0, fmt.Errorf("read %s: %w", f.Disk, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != f.SHA256 {
		return keys, 0, 0, fmt.Errorf("%s changed while it was being deployed; run the deploy again", f.Disk)
	}
	br, useBr, err := Compress(f.Path, data)
	if err != nil {
		return keys, 0, 0, err
	}
	put := func(sum, encoding string, body []byte) error {
		if _, err := o.Client.PutFile(ctx, o.AppID, sum, encoding, bytes.NewReader(body), int64(len(body))); err != nil {
			return fmt.Errorf("upload %s (%s): %w", f.Path, encoding, err)
		}
		n++
		sent += int64(len(body))
		return nil
	}
	if o.Session == nil {
		if useBr || mustBr {
			return keys, n, sent, put(f.SHA256, ota.EncodingBrotli, br)
		}
		return keys, n, sent, put(f.SHA256, ota.EncodingRaw, data)
	}
	digest := sha256.Sum256(data)
	if keys.fileHash, err = o.Session.SignChecksum(digest[:]); err != nil {
		return keys, n, sent, err
	}
	encrypt := func(plain []byte) (string, []byte, error) {
		var out bytes.Buffer
		out.Grow(len(plain) + 16)
		if _, err := o.Session.Seal(bytes.NewReader(plain), &out); err != nil {
			return "", nil, fmt.Errorf("encrypt %s: %w", f.Path, err)
		}
		sum := sha256.Sum256(out.Bytes())
		return hex.EncodeToString(sum[:]), out.Bytes(), nil
	}
	key, body, err := encrypt(data)
	if err != nil {
		return keys, n, sent, err
	}
	if err := put(key, ota.EncodingEncrypted, body); err != nil {
		return keys, n, sent, err
	}
	keys.raw = key
	if useBr {
		if key, body, err = encrypt(br); err != nil {
			return keys, n, sent, err
		}
		if err := put(key, ota.EncodingEncrypted, body); err != nil {
			return keys, n, sent, err
		}
		keys.br = key
	}
	return keys, n, sent, nil
}
