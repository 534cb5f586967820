package capapp

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const pkgJSON = `{"name":"x","version":"1.0.0","dependencies":{"@capacitor/core":"^7"},"devDependencies":{"@capacitor/cli":"^7"}}`

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeInstall plays npm ci: it writes every declared package, after a
// pause long enough for concurrent callers to overlap.
func fakeInstall(calls *atomic.Int32) func(context.Context, string, string) error {
	return func(_ context.Context, _, dir string) error {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond)
		for _, name := range []string{"@capacitor/core", "@capacitor/cli"} {
			p := filepath.Join(dir, "node_modules", filepath.FromSlash(name), "package.json")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(`{"version":"7.0.0"}`), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
}

func found(string) (string, error) { return "/usr/bin/npm", nil }

func TestMissing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "package.json"), pkgJSON)
	got, err := Missing(dir)
	if err != nil || !slices.Equal(got, []string{"@capacitor/cli", "@capacitor/core"}) {
		t.Errorf("Missing = %q, %v", got, err)
	}
	writeFile(t, filepath.Join(dir, "node_modules", "@capacitor", "cli", "package.json"), "{}")
	if got, _ := Missing(dir); !slices.Equal(got, []string{"@capacitor/core"}) {
		t.Errorf("Missing = %q, want only @capacitor/core", got)
	}
	if _, err := Missing(t.TempDir()); err == nil {
		t.Error("Missing of a folder without package.json succeeded")
	}
}

// TestEnsure covers both states a checkout can be in: packages installed
// (nothing runs) and not installed (npm ci runs once).
func TestEnsure(t *testing.T) {
	t.Run("installed: nothing runs", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "package.json"), pkgJSON)
		var calls atomic.Int32
		if err := fakeInstall(&calls)(context.Background(), "", dir); err != nil {
			t.Fatal(err)
		}
		calls.Store(0)
		in := Installer{LookPath: func(string) (string, error) { return "", errors.New("must not be looked up") }, Install: fakeInstall(&calls)}
		if err := in.Ensure(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 0 {
			t.Errorf("installed %d times, want 0", calls.Load())
		}
	})
	t.Run("missing: installs", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "package.json"), pkgJSON)
		var calls atomic.Int32
		in := Installer{LookPath: found, Install: fakeInstall(&calls)}
		if err := in.Ensure(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 1 {
			t.Errorf("installed %d times, want 1", calls.Load())
		}
	})
	t.Run("no npm", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "package.json"), pkgJSON)
		in := Installer{LookPath: func(string) (string, error) { return "", exec.ErrNotFound }, Install: fakeInstall(new(atomic.Int32))}
		err := in.Ensure(context.Background(), dir)
		if !errors.Is(err, ErrNoNPM) || !strings.Contains(err.Error(), "@capacitor/cli, @capacitor/core") {
			t.Errorf("err = %v, want ErrNoNPM naming the missing packages", err)
		}
	})
	t.Run("install fails", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "package.json"), pkgJSON)
		in := Installer{LookPath: found, Install: func(context.Context, string, string) error { return errors.New("offline") }}
		if err := in.Ensure(context.Background(), dir); err == nil || errors.Is(err, ErrNoNPM) {
			t.Errorf("err = %v, want the install's error", err)
		}
	})
	t.Run("install leaves packages out", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "package.json"), pkgJSON)
		in := Installer{LookPath: found, Install: func(context.Context, string, string) error { return nil }}
		if err := in.Ensure(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "left @capacitor/cli, @capacitor/core uninstalled") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestEnsureConcurrent: callers that find the packages missing at the same
// time install them once; the others wait and find them installed.
func TestEnsureConcurrent(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "package.json"), pkgJSON)
	var calls atomic.Int32
	in := Installer{LookPath: found, Install: fakeInstall(&calls)}
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() { errs[i] = in.Ensure(context.Background(), dir) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("installed %d times, want once", calls.Load())
	}
}

// TestEnsureAcrossProcesses: test binaries of several packages (separate
// processes) install once between them.
func TestEnsureAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("CAPAPP_TEST_HELPER_DIR"); dir != "" {
		log := filepath.Join(dir, "installs.log")
		in := Installer{LookPath: found, Install: func(ctx context.Context, npm, d string) error {
			f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			_, _ = f.WriteString("install\n")
			f.Close()
			return fakeInstall(new(atomic.Int32))(ctx, npm, d)
		}}
		if err := in.Ensure(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
		return
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "package.json"), pkgJSON)
	var cmds []*exec.Cmd
	for range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnsureAcrossProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), "CAPAPP_TEST_HELPER_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper process: %v", err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "installs.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "install\n"); n != 1 {
		t.Errorf("%d processes installed, want 1", n)
	}
}

// TestNPMCI runs the real npm ci on a copy of the fixture's package.json
// and lock file, which is what Ensure does for testdata/capapp.
func TestNPMCI(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but npm is not installed")
		}
		t.Skip("skipped: npm is not installed")
	}
	src, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), string(b))
	}
	in := Installer{LookPath: exec.LookPath, Install: NPMCI}
	if err := in.Ensure(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "cap")); err != nil {
		t.Errorf("npm ci did not install the Capacitor CLI: %v", err)
	}
}
