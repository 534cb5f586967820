package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// keyBytes is the size of a generated signing key.
const keyBytes = 32

// LoadOrCreateKey returns the token signing key stored hex-encoded in path,
// creating the file (mode 0600, parents 0700) with a new random key if it
// does not exist. An existing file readable by group or others, or not
// holding exactly 64 hex digits, is refused: the key is what every admin
// token's validity rests on.
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key, err = createKey(path)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it between our read and create.
		return readKey(path)
	}
	return key, err
}

func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read token key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read token key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("token key %s is not a regular file", path)
	}
	// Windows has no Unix permission bits to check.
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("token key %s has mode %04o, so other users may read it; run: chmod 600 %s", path, perm, path)
	}
	// Read one byte past a valid file's size to notice longer ones.
	raw, err := io.ReadAll(io.LimitReader(f, 2*keyBytes+3))
	if err != nil {
		return nil, fmt.Errorf("read token key %s: %w", path, err)
	}
	raw = bytes.TrimSpace(raw)
	key := make([]byte, keyBytes)
	if len(raw) != 2*keyBytes {
		return nil, badKeyFile(path)
	}
	if _, err := hex.Decode(key, raw); err != nil {
		return nil, badKeyFile(path)
	}
	return key, nil
}

func badKeyFile(path string) error {
	return fmt.Errorf("token key %s must hold exactly %d hex digits; "+
		"delete it to create a new key (this signs out every user)", path, 2*keyBytes)
}

func createKey(path string) (key []byte, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create token key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create token key: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			// A partial key file would be refused on the next start.
			_ = os.Remove(path)
		}
	}()
	key = make([]byte, keyBytes)
	_, _ = rand.Read(key) // never fails; a broken source crashes the program
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		return nil, fmt.Errorf("write token key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("write token key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write token key %s: %w", path, err)
	}
	return key, nil
}
