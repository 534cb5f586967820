package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Errors of CheckWebDir; the returned errors wrap them with details.
var (
	ErrNoIndexHTML      = errors.New("no index.html at the root of the web folder")
	ErrNoNotifyAppReady = errors.New("notifyAppReady not found in the web build")
)

// markers show that a build tells its plugin it started, or the plugin
// rolls the update back: @capgo/capacitor-updater's notifyAppReady
// (protocol §7), or @capawesome/capacitor-live-update, registered under
// the name LiveUpdate, whose ready() does the same (protocol-capawesome
// §7). Minifiers keep both: a method name and a string literal.
var markers = [][]byte{[]byte("notifyAppReady"), []byte("LiveUpdate")}

// CheckWebDir runs the checks @capgo/cli runs before zipping a web build:
// index.html at the root, and one of the markers in at least one .js or
// .mjs file. Files are streamed and the search stops at the first hit.
func CheckWebDir(dir string) error {
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("web folder %s does not exist: build the web app first, or fix webDir in the Capacitor config", dir)
	} else if err == nil && !fi.IsDir() {
		return fmt.Errorf("web folder %s is a file, not a folder", dir)
	}
	fi, err := os.Stat(filepath.Join(dir, "index.html"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w %s: build the web app first, or point at the folder that holds index.html", ErrNoIndexHTML, dir)
	case err != nil:
		return fmt.Errorf("check web folder: %w", err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w %s: index.html is not a regular file", ErrNoIndexHTML, dir)
	}

	errFound := errors.New("found")
	buf := make([]byte, 64<<10)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		if skipName(d.Name()) && d.IsDir() {
			return filepath.SkipDir
		}
		ext := strings.ToLower(filepath.Ext(p))
		if d.IsDir() || (ext != ".js" && ext != ".mjs") {
			return nil
		}
		ok, err := fileContains(p, markers, buf)
		if err != nil {
			return err
		}
		if ok {
			return errFound
		}
		return nil
	})
	switch {
	case errors.Is(err, errFound):
		return nil
	case err != nil:
		return fmt.Errorf("check web folder: %w", err)
	}
	return fmt.Errorf("%w (no .js or .mjs file in %s contains it): the app must call CapacitorUpdater.notifyAppReady() "+
		"(@capgo/capacitor-updater) or LiveUpdate.ready() (@capawesome/capacitor-live-update) once it has started, "+
		"or every device rolls the update back after appReadyTimeout (readyTimeout); "+
		"use --no-code-check to skip this check", ErrNoNotifyAppReady, dir)
}

// fileContains streams the file through buf and reports whether it holds
// one of needles, keeping the longest needle's length minus one bytes
// between reads so a match across two reads is found.
func fileContains(path string, needles [][]byte, buf []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	keep := 0
	for _, n := range needles {
		keep = max(keep, len(n)-1)
	}
	n := 0 // bytes of buf in use
	for {
		m, err := f.Read(buf[n:])
		n += m
		for _, needle := range needles {
			if bytes.Contains(buf[:n], needle) {
				return true, nil
			}
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read %s: %w", path, err)
		}
		if n > keep {
			n = copy(buf, buf[n-keep:n])
		}
	}
}

// HashFile returns the lowercase hex SHA-256 of a file and its size: the
// checksum the updater plugin verifies (same as sha256sum).
func HashFile(path string) (sha256hex string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("hash file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	size, err = io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}
