package auth_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/auth"
)

func TestLoadOrCreateKeyCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "token.key")
	key, err := auth.LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKey: %v", err)
	}
	if len(key) != 32 {
		t.Errorf("key is %d bytes, want 32", len(key))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", perm)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(raw)); len(got) != 64 {
		t.Errorf("key file holds %q, want 64 hex digits", got)
	}
	again, err := auth.LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("second LoadOrCreateKey: %v", err)
	}
	if !bytes.Equal(again, key) {
		t.Error("second LoadOrCreateKey returned a different key")
	}
	other, err := auth.LoadOrCreateKey(filepath.Join(t.TempDir(), "token.key"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other, key) {
		t.Error("two new key files hold the same key")
	}
	if _, err := auth.NewIssuer(key, auth.Options{}); err != nil {
		t.Errorf("NewIssuer refuses a generated key: %v", err)
	}
}

func TestLoadOrCreateKeyRefuses(t *testing.T) {
	good := strings.Repeat("ab", 32)
	tests := []struct {
		name     string
		content  string
		mode     os.FileMode
		wantText string
	}{
		{"readable by others", good + "\n", 0o644, "chmod 600"},
		{"readable by group", good, 0o640, "chmod 600"},
		{"empty", "", 0o600, "64 hex digits"},
		{"too short", good[:62], 0o600, "64 hex digits"},
		{"too long", good + "ab", 0o600, "64 hex digits"},
		{"not hex", strings.Repeat("zz", 32), 0o600, "64 hex digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token.key")
			if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // umask may have narrowed it
				t.Fatal(err)
			}
			_, err := auth.LoadOrCreateKey(path)
			if err == nil {
				t.Fatal("LoadOrCreateKey accepted the file")
			}
			if !strings.Contains(err.Error(), tt.wantText) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q should name %s and say %q", err, path, tt.wantText)
			}
			if raw, _ := os.ReadFile(path); string(raw) != tt.content {
				t.Error("LoadOrCreateKey changed a file it refused")
			}
		})
	}
}

func TestLoadOrCreateKeyAcceptsExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.key")
	hexKey := strings.Repeat("0f", 32)
	if err := os.WriteFile(path, []byte(hexKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := auth.LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKey: %v", err)
	}
	if want := bytes.Repeat([]byte{0x0f}, 32); !bytes.Equal(key, want) {
		t.Errorf("key = %x, want %x", key, want)
	}
}

func TestLoadOrCreateKeyDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.LoadOrCreateKey(dir); err == nil {
		t.Error("LoadOrCreateKey on a directory: want an error")
	}
}
