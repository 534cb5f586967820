package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

func TestCollectBlobs(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	st, err := openStore(dataDir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bl, err := blob.NewFS(filepath.Join(dataDir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	put := func(content string) blob.Info {
		t.Helper()
		info, err := bl.Put(ctx, strings.NewReader(content), 0)
		if err != nil {
			t.Fatalf("put: %v", err)
		}
		return info
	}
	referenced := put("bundle in a channel")
	oldGarbage := put("bundle of a deleted release")
	youngGarbage := put("upload whose record is being written")

	now := time.Now()
	_, err = st.Publish(ctx, store.PublishInput{
		Bundle:  ota.Bundle{AppID: "com.example.app", Version: "1.0.0", Kind: ota.KindWeb, SHA256: referenced.SHA256, Size: referenced.Size},
		Channel: "stable", Actor: "test", Time: now,
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	// Two hours later the old blobs are past the grace period, except the
	// young one, which is given a fresh time.
	later := now.Add(2 * time.Hour)
	if err := touch(bl, youngGarbage.SHA256, later.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	collectBlobs(ctx, st, bl, later, blobGrace, log)

	for _, tt := range []struct {
		name string
		info blob.Info
		kept bool
	}{
		{"referenced", referenced, true},
		{"old unreferenced", oldGarbage, false},
		{"young unreferenced", youngGarbage, true},
	} {
		_, err := bl.Stat(ctx, tt.info.SHA256)
		if kept := err == nil; kept != tt.kept {
			t.Errorf("%s blob: kept = %v (stat err %v), want %v", tt.name, kept, err, tt.kept)
		}
		if err != nil && !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("%s blob: stat: %v", tt.name, err)
		}
	}
	if !strings.Contains(logs.String(), "count=1") {
		t.Errorf("log does not report one collected bundle:\n%s", logs.String())
	}
}

// touch sets a stored blob's modification time by finding its file in the
// FS layout.
func touch(bl *blob.FS, key string, tm time.Time) error {
	var found string
	err := filepath.WalkDir(bl.Dir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(p) == key {
			found = p
		}
		return err
	})
	if err != nil {
		return err
	}
	if found == "" {
		return errors.New("blob file not found")
	}
	return os.Chtimes(found, tm, tm)
}

func TestDerivePublicURL(t *testing.T) {
	tests := []struct {
		addr     string
		want     string
		wantWarn bool
	}{
		{"127.0.0.1:8080", "http://127.0.0.1:8080", false},
		{"[::1]:9000", "http://[::1]:9000", false},
		{"0.0.0.0:8080", "http://localhost:8080", true},
		{"[::]:8080", "http://localhost:8080", true},
	}
	for _, tt := range tests {
		addr, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		got := derivePublicURL(addr, slog.New(slog.NewTextHandler(&logs, nil)))
		if got != tt.want {
			t.Errorf("derivePublicURL(%s) = %q, want %q", tt.addr, got, tt.want)
		}
		if warned := strings.Contains(logs.String(), "set --public-url"); warned != tt.wantWarn {
			t.Errorf("derivePublicURL(%s) warned = %v, want %v", tt.addr, warned, tt.wantWarn)
		}
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	for _, tt := range []struct {
		format, want string
	}{{"json", `"msg":"hello"`}, {"text", "msg=hello"}, {"auto", `"msg":"hello"`}} {
		buf.Reset()
		log, err := newLogger(&buf, "info", tt.format)
		if err != nil {
			t.Fatal(err)
		}
		log.Debug("hidden")
		log.Info("hello")
		if !strings.Contains(buf.String(), tt.want) || strings.Contains(buf.String(), "hidden") {
			t.Errorf("format %s: log %q, want %s and no debug line", tt.format, buf.String(), tt.want)
		}
	}
	if _, err := newLogger(io.Discard, "info", "xml"); err == nil {
		t.Errorf("format xml: want an error")
	}
}

func TestWarnIfShared(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits on Windows")
	}
	for mode, wantWarn := range map[os.FileMode]bool{0o700: false, 0o750: true, 0o755: true} {
		dir := t.TempDir()
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		warnIfShared(dir, slog.New(slog.NewTextHandler(&logs, nil)))
		if warned := strings.Contains(logs.String(), "chmod 700"); warned != wantWarn {
			t.Errorf("mode %o: warned = %v, want %v", mode, warned, wantWarn)
		}
	}
}
