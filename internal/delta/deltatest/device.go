// Package deltatest is a device for tests and benchmarks: it installs an
// update answer's manifest over HTTP the way the updater plugin does
// (@capgo/capacitor-updater 8.51.14: iOS CapgoUpdater.swift
// downloadManifest L1370-1570 and downloadManifestFile, Android
// DownloadService.java handleManifestDownload L429-585 and
// downloadAndVerify), so a test can show that what otad serves ends, on a
// device, as the web dir it was deployed from, and count what the device
// downloads.
//
// For each entry the device, in the plugin's order: decrypts file_hash
// when it has a public key and the answer a session key; refuses a path
// (manifest_path_fail: empty, backslash, NUL, absolute, leaving the
// bundle, and on Android a second entry for the same target); reuses the
// built-in file (iOS looks it up under file_name with ".br" still on,
// Android without) or the cached one (<hash>_<base name without .br>)
// when its SHA-256 matches; otherwise downloads it (200 or 206), decrypts
// it, Brotli-decodes a ".br" one, checks its SHA-256 and caches it.
package deltatest

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/pkg/ota"
)

// Device is one simulated device. Builtin is the folder of the web build
// inside the app (the native build's public/), Cache the plugin's
// download cache; both may be empty folders but must exist.
type Device struct {
	Platform  string // "ios" or "android"
	Builtin   string
	Cache     string
	PublicKey *rsa.PublicKey // the app's publicKey, nil when it has none
	HTTP      *http.Client   // nil: http.DefaultClient
}

// Result counts how an install went.
type Result struct {
	// Downloaded is the number of bytes fetched; Fetched, FromBuiltin and
	// FromCache count the files by where they came from.
	Downloaded                      int64
	Fetched, FromBuiltin, FromCache int
	// Stats are the per-file failure events the plugin would send, as
	// action and version_name ("<version>:<file>").
	Stats []Stat
}

// Stat is one stats event the plugin would send.
type Stat struct{ Action, VersionName string }

// emptySHA256 is the hash of no bytes: the plugins reuse an empty cached
// file only for it (isReusableCacheFile), a truncated one never.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// ErrRefused is returned (wrapped) when the plugin would not install the
// answer; Result.Stats then says why, as the plugin reports it.
var ErrRefused = errors.New("the plugin refuses the manifest")

// Install installs the manifest of resp into dest, a new bundle folder.
func (d *Device) Install(ctx context.Context, resp ota.UpdateResponse, dest string) (Result, error) {
	var res Result
	if len(resp.Manifest) == 0 {
		return res, errors.New("the answer has no manifest")
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return res, err
	}
	sessionKey := ""
	if resp.SessionKey != nil {
		sessionKey = *resp.SessionKey
	}
	decrypting := d.PublicKey != nil && sessionKey != ""
	stat := func(action, file string) { res.Stats = append(res.Stats, Stat{action, resp.Version + ":" + file}) }
	fail := func(format string, args ...any) (Result, error) {
		return res, fmt.Errorf("%w: "+format, append([]any{ErrRefused}, args...)...)
	}
	seen := map[string]bool{}
	for _, e := range resp.Manifest {
		if e.FileName == "" || e.DownloadURL == "" || e.FileHash == "" {
			return fail("entry %+v lacks file_name, download_url or file_hash", e)
		}
		hash := e.FileHash
		if decrypting {
			h, err := bundle.DecryptChecksum(d.PublicKey, hash)
			if err != nil {
				return fail("file_hash of %s does not decrypt: %v", e.FileName, err)
			}
			hash = h
		}
		if bad := delta.PluginPathProblem(e.FileName); bad != "" {
			stat("manifest_path_fail", e.FileName)
			return fail("%s: %s", e.FileName, bad)
		}
		isBr := strings.HasSuffix(e.FileName, ".br")
		target := path.Clean(strings.TrimSuffix(e.FileName, ".br"))
		if seen[target] && d.Platform == "android" {
			stat("manifest_path_fail", e.FileName)
			return fail("%s: a second entry for %s", e.FileName, target)
		}
		seen[target] = true
		destPath := filepath.Join(dest, filepath.FromSlash(target))
		if err := os.MkdirAll(filepath.Dir(destPath), 0o755); err != nil {
			return res, err
		}

		builtinName := target
		if d.Platform == "ios" {
			builtinName = e.FileName // L1477: the name with .br still on
		}
		if ok, err := copyIfHash(filepath.Join(d.Builtin, filepath.FromSlash(builtinName)), destPath, hash); err != nil {
			return res, err
		} else if ok {
			res.FromBuiltin++
			continue
		}
		cacheFile := filepath.Join(d.Cache, hash+"_"+path.Base(target))
		if fi, err := os.Stat(cacheFile); err == nil && (fi.Size() > 0 || hash == emptySHA256) {
			if err := copyFile(cacheFile, destPath); err != nil {
				return res, err
			}
			res.FromCache++
			continue
		}

		body, status, err := d.get(ctx, e.DownloadURL)
		if err != nil || (status != http.StatusOK && status != http.StatusPartialContent) {
			stat("download_manifest_file_fail", e.FileName)
			return fail("GET %s: status %d, %v", e.DownloadURL, status, err)
		}
		res.Downloaded += int64(len(body))
		res.Fetched++
		if decrypting {
			var plain bytes.Buffer
			if err := bundle.Decrypt(bytes.NewReader(body), &plain, d.PublicKey, sessionKey); err != nil {
				res.Stats = append(res.Stats, Stat{"decrypt_fail", resp.Version})
				return fail("decrypt %s: %v", e.FileName, err)
			}
			body = plain.Bytes()
		}
		if isBr {
			plain, err := io.ReadAll(delta.NewBrotliReader(bytes.NewReader(body)))
			if err != nil {
				stat("download_manifest_brotli_fail", target)
				return fail("Brotli-decode %s: %v", e.FileName, err)
			}
			body = plain
		}
		sum := sha256.Sum256(body)
		if hex.EncodeToString(sum[:]) != hash {
			stat("download_manifest_checksum_fail", target)
			return fail("%s: sha256 %x, want %s", e.FileName, sum, hash)
		}
		if err := os.WriteFile(destPath, body, 0o644); err != nil {
			return res, err
		}
		if err := os.WriteFile(cacheFile, body, 0o644); err != nil {
			return res, err
		}
	}
	if fi, err := os.Stat(filepath.Join(dest, "index.html")); err != nil || !fi.Mode().IsRegular() {
		res.Stats = append(res.Stats, Stat{"set_fail", resp.Version})
		return fail("the bundle has no index.html")
	}
	return res, nil
}

func (d *Device) get(ctx context.Context, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	c := d.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// copyIfHash copies src to dst when src is a file with SHA-256 hash.
func copyIfHash(src, dst, hash string) (bool, error) {
	fi, err := os.Stat(src)
	if err != nil || !fi.Mode().IsRegular() {
		return false, nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return false, err
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != hash {
		return false, nil
	}
	return true, os.WriteFile(dst, b, 0o644)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// PopulateCache does what iOS does after it installed a zip bundle
// (CapgoUpdater.swift populateDeltaCache L958-1012): every file of the
// bundle folder dir that is not the same in the built-in bundle goes into
// the cache as <sha256>_<base name>. Android has no such step.
func (d *Device) PopulateCache(dir string) error {
	if d.Platform != "ios" {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		hash := hex.EncodeToString(sum[:])
		if bi, err := os.ReadFile(filepath.Join(d.Builtin, rel)); err == nil && bytes.Equal(bi, b) {
			return nil // built in: a permanent source already
		}
		return os.WriteFile(filepath.Join(d.Cache, hash+"_"+filepath.Base(p)), b, 0o644)
	})
}

// SameTree reports the first difference between two folders: a file
// missing on one side, or with other bytes; "" when they hold the same
// files with the same contents.
func SameTree(a, b string) (string, error) {
	files := func(root string) (map[string][]byte, error) {
		out := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)], err = os.ReadFile(p)
			return err
		})
		return out, err
	}
	fa, err := files(a)
	if err != nil {
		return "", err
	}
	fb, err := files(b)
	if err != nil {
		return "", err
	}
	for name, ba := range fa {
		bb, ok := fb[name]
		switch {
		case !ok:
			return name + " is missing from " + b, nil
		case !bytes.Equal(ba, bb):
			return name + " differs", nil
		}
	}
	for name := range fb {
		if _, ok := fa[name]; !ok {
			return name + " is only in " + b, nil
		}
	}
	return "", nil
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}
