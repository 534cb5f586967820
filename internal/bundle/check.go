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

// marker is the call every bundle must make once it has started, or the
// plugin rolls the update back (protocol §7).
const marker = "notifyAppReady"

// CheckWebDir runs the checks @capgo/cli runs before zipping a web build:
// index.html at the root, and the string notifyAppReady in at least one
// .js or .mjs file. Files are streamed and the search stops at the first
// hit.
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
		ok, err := fileContains(p, []byte(marker), buf)
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
		"once it has started, or every device rolls the update back after appReadyTimeout; "+
		"use --no-code-check to skip this check", ErrNoNotifyAppReady, dir)
}

// fileContains streams the file through buf, keeping len(needle)-1 bytes
// between reads so a match across two reads is found.
func fileContains(path string, needle, buf []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	keep := len(needle) - 1
	n := 0 // bytes of buf in use
	for {
		m, err := f.Read(buf[n:])
		n += m
		if bytes.Contains(buf[:n], needle) {
			return true, nil
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
