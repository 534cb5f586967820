package blob_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/blob/blobtest"
)

func newFS(t testing.TB) *blob.FS {
	t.Helper()
	s, err := blob.NewFS(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatalf("NewFS: %v", err)
	}
	return s
}

func TestFSConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return newFS(t) })
}

// tmpEntries lists what is left in the upload temp dir.
func tmpEntries(t *testing.T, s *blob.FS) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
	if err != nil {
		t.Fatalf("read tmp dir: %v", err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestFSLayout(t *testing.T) {
	s := newFS(t)
	data := []byte("layout")
	info, err := s.Put(t.Context(), bytes.NewReader(data), 0)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	p := filepath.Join(s.Dir(), "sha256", info.SHA256[:2], info.SHA256)
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("blob not at %s: %v", p, err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("file at %s = %q, want %q", p, got, data)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o644 {
		t.Errorf("blob mode = %04o, want 0644", perm)
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp dir after Put = %v, want empty", left)
	}
	// A second Put of the same bytes must not leave its temp file behind.
	if _, err := s.Put(t.Context(), bytes.NewReader(data), 0); err != nil {
		t.Fatal(err)
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp dir after duplicate Put = %v, want empty", left)
	}
}

func TestNewFSCleansInterruptedUploads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	s, err := blob.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := s.Put(t.Context(), strings.NewReader("kept"), 0)
	if err != nil {
		t.Fatal(err)
	}
	// What a crash mid-upload leaves: a temp file and a temp dir.
	if err := os.WriteFile(filepath.Join(dir, "tmp", "put-123"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp", "x", "y"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err = blob.NewFS(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp dir after reopen = %v, want empty", left)
	}
	if _, err := s.Stat(t.Context(), kept.SHA256); err != nil {
		t.Errorf("stored blob lost on reopen: %v", err)
	}
}

func TestNewFSErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := blob.NewFS(file); err == nil {
		t.Error("NewFS on a regular file: want an error")
	}
}

func TestFSListSkipsStrangers(t *testing.T) {
	s := newFS(t)
	info, err := s.Put(t.Context(), strings.NewReader("real"), 0)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(s.Dir(), "sha256")
	other := strings.Repeat("ab", 32)
	for _, p := range []string{
		filepath.Join(root, "README"),
		filepath.Join(root, info.SHA256[:2], "notes.txt"),
		// a valid name in the wrong shard
		filepath.Join(root, "00", other),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := s.List(t.Context(), func(i blob.Info) error {
		got = append(got, i.SHA256)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != info.SHA256 {
		t.Errorf("List = %v, want only [%s]", got, info.SHA256)
	}
}

func TestFSReplacesDamagedBlob(t *testing.T) {
	s := newFS(t)
	data := blobtest.Data(9, 2048)
	info, err := s.Put(t.Context(), bytes.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.Dir(), "sha256", info.SHA256[:2], info.SHA256)
	if err := os.Truncate(p, 100); err != nil {
		t.Fatal(err)
	}
	again, err := s.Put(t.Context(), bytes.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !again.New {
		t.Error("Put over a truncated blob: New = false, want true")
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("blob after repair has %d bytes, want the %d original", len(got), len(data))
	}
}

// fullDisk wraps a real temp file and fails like a full disk once more
// than room bytes were written, or on Sync.
type fullDisk struct {
	*os.File
	room     int
	failSync bool
}

func (f *fullDisk) Write(p []byte) (int, error) {
	if len(p) > f.room {
		n, _ := f.File.Write(p[:f.room])
		f.room = 0
		return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.room -= len(p)
	return f.File.Write(p)
}

func (f *fullDisk) Sync() error {
	if f.failSync {
		return &fs.PathError{Op: "sync", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.Sync()
}

func TestFSDiskFull(t *testing.T) {
	tests := []struct {
		name     string
		room     int
		failSync bool
	}{
		{"write fails at once", 0, false},
		{"write fails mid-stream", 300 << 10, false},
		{"sync fails", 1 << 30, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFS(t)
			s.SetCreateTemp(func(dir, pattern string) (blob.TempFile, error) {
				f, err := os.CreateTemp(dir, pattern)
				if err != nil {
					return nil, err
				}
				return &fullDisk{File: f, room: tt.room, failSync: tt.failSync}, nil
			})
			_, err := s.Put(t.Context(), bytes.NewReader(blobtest.Data(8, 1<<20)), 0)
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Put error = %v, want ENOSPC", err)
			}
			if !strings.Contains(err.Error(), "no space left") {
				t.Errorf("error %q lost the %q text", err, "no space left")
			}
			if left := tmpEntries(t, s); len(left) != 0 {
				t.Errorf("tmp dir after a full disk = %v, want empty", left)
			}
			var n int
			if err := s.List(t.Context(), func(blob.Info) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%d blobs visible after a failed Put, want 0", n)
			}
		})
	}
}

func TestFSTooLargeLeavesNothing(t *testing.T) {
	s := newFS(t)
	_, err := s.Put(t.Context(), io.LimitReader(zeros{}, 10<<20), 1<<20)
	if !errors.Is(err, blob.ErrTooLarge) {
		t.Fatalf("Put error = %v, want ErrTooLarge", err)
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp dir after ErrTooLarge = %v, want empty", left)
	}
}

// zeros is an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// FuzzOpenKey feeds arbitrary keys (they come from URL paths) to the
// lookup methods: only the stored blob's own key may ever be found, and
// nothing may be touched outside the store.
func FuzzOpenKey(f *testing.F) {
	f.Add("")
	f.Add("../../../../etc/passwd")
	f.Add(blobtest.Key([]byte("stored")))
	s := newFS(f)
	stored, err := s.Put(f.Context(), strings.NewReader("stored"), 0)
	if err != nil {
		f.Fatal(err)
	}
	// A file next to the store that a traversal would reach.
	secret := filepath.Join(filepath.Dir(s.Dir()), "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		c, info, err := s.Open(t.Context(), key)
		if key == stored.SHA256 {
			if err != nil {
				t.Fatalf("Open(stored key): %v", err)
			}
			c.Close()
			return
		}
		if !errors.Is(err, blob.ErrNotFound) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("Open(%q) = %+v, %v; want ErrNotFound", key, info, err)
		}
		if _, err := s.Stat(t.Context(), key); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Stat(%q) = %v; want ErrNotFound", key, err)
		}
		if err := s.Delete(t.Context(), key); err != nil {
			t.Fatalf("Delete(%q) = %v", key, err)
		}
		if _, err := os.Stat(secret); err != nil {
			t.Fatalf("Delete(%q) reached outside the store: %v", key, err)
		}
	})
}

func BenchmarkPut(b *testing.B) {
	s := newFS(b)
	data := blobtest.Data(10, 25<<20)
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		// Vary one byte so every Put writes a new blob rather than dedups.
		data[0] = byte(i)
		data[1] = byte(i >> 8)
		info, err := s.Put(b.Context(), bytes.NewReader(data), 0)
		if err != nil {
			b.Fatal(err)
		}
		// Keep the disk from filling up over many iterations.
		if err := s.Delete(b.Context(), info.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFSServeRange serves a blob the way the download handler does and
// resumes it with a Range request.
func TestFSServeRange(t *testing.T) {
	s := newFS(t)
	data := blobtest.Data(11, 100000)
	info, err := s.Put(t.Context(), bytes.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, info, err := s.Open(r.Context(), strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		defer c.Close()
		http.ServeContent(w, r, "", info.ModTime, c)
	}))
	defer srv.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/"+info.SHA256, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Range", "bytes=50000-")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[50000:]) {
		t.Errorf("Range request: status %d, %d bytes; want 206 and the last %d bytes", resp.StatusCode, len(body), len(data)-50000)
	}
}
