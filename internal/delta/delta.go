// Package delta holds what otactl and otad share about delta (manifest)
// releases, in which devices download only the files of a bundle they do
// not have (protocol §2.6): the file list of a web dir, each file's
// Brotli form, and the rules a manifest must follow for the updater plugin
// to install it.
//
// A delta release is a zip bundle plus the list of its files. Each file is
// stored on its own, content-addressed by the SHA-256 of its original
// bytes, so a file that did not change since an earlier release is stored
// and uploaded once. Files of MinBrotliSize bytes or more also get a
// Brotli form when that is smaller, which devices fetch under the file
// name with ".br" appended and decompress.
package delta

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"

	"github.com/otaship/ota/internal/bundle"
)

// MinBrotliSize is the smallest file given a Brotli form, as @capgo/cli
// does (cli/src/bundle/partial.ts BROTLI_MIN_SIZE): below it the ".br"
// framing rarely pays.
const MinBrotliSize = 8192

// brotliQuality is the Brotli level files are compressed at. Measured on
// the generated 25 MiB bundle's text files: quality 6 (Brotli's default)
// gives 22.0 % of the input at 13 MB/s; 11 gives 20.1 % at 0.5 MB/s, which
// would make a first deploy of a big app take minutes.
const brotliQuality = 6

// File is one file of a web dir: its path in the bundle, where it is read
// from, and its size and SHA-256.
type File struct {
	Path   string
	Disk   string
	Size   int64
	SHA256 string
}

// Scan lists the files of the web dir dir (the very files, under the very
// names, that bundle.Zip puts in its zip) and hashes them, several at a
// time.
func Scan(ctx context.Context, dir string) ([]File, error) {
	web, err := bundle.Files(dir)
	if err != nil {
		return nil, err
	}
	files := make([]File, len(web))
	for i, w := range web {
		files[i] = File{Path: w.Name, Disk: w.Path, Size: w.Size}
	}
	err = Parallel(ctx, len(files), 0, func(i int) error {
		sum, n, err := hashFile(files[i].Disk)
		if err != nil {
			return err
		}
		files[i].SHA256, files[i].Size = sum, n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Parallel calls fn for 0..n-1 on up to workers goroutines (0: one per
// CPU) and returns the first error; once one fails, indexes not started
// yet are skipped.
func Parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if first != nil || next >= n {
			return 0, false
		}
		if err := ctx.Err(); err != nil {
			first = err
			return 0, false
		}
		i := next
		next++
		return i, true
	}
	for range workers {
		wg.Go(func() {
			for {
				i, ok := take()
				if !ok {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// NeedsBrotli reports whether a file must be sent Brotli-compressed
// whatever its size: the plugin decompresses every file whose manifest
// name ends in ".br" and strips the suffix, so a file really called
// "x.br" can only be listed as "x.br.br".
func NeedsBrotli(path string) bool { return strings.HasSuffix(path, ".br") }

// Compress returns data's Brotli form and true when a device should get
// that form: the file is MinBrotliSize bytes or more and the form is more
// than 10 bytes smaller (as @capgo/cli decides), or NeedsBrotli(path).
// Otherwise it returns nil and false.
func Compress(path string, data []byte) ([]byte, bool, error) {
	must := NeedsBrotli(path)
	if len(data) < MinBrotliSize && !must {
		return nil, false, nil
	}
	var b bytes.Buffer
	b.Grow(len(data) / 3)
	w := brotli.NewWriterLevel(&b, brotliQuality)
	if _, err := w.Write(data); err != nil {
		return nil, false, fmt.Errorf("compress %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		return nil, false, fmt.Errorf("compress %s: %w", path, err)
	}
	if !must && b.Len() >= len(data)-10 {
		return nil, false, nil
	}
	return b.Bytes(), true, nil
}

// NewBrotliReader decodes a Brotli stream. Its Read fails on a damaged
// stream and on bytes after the stream's end.
func NewBrotliReader(r io.Reader) io.Reader { return brotli.NewReader(r) }

// ManifestName is the file_name of a file in a manifest: its path, with
// ".br" appended when devices get the Brotli form.
func ManifestName(path string, brotliForm bool) string {
	if brotliForm {
		return path + ".br"
	}
	return path
}
