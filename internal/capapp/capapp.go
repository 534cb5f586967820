// Package capapp hands tests the repository's fixture Capacitor app,
// testdata/capapp, with its npm packages installed: when node_modules is
// missing or incomplete and npm is on PATH, the first test to ask runs
// `npm ci` for it, once, while test binaries of other packages that ask at
// the same time wait for it (a lock file). A fresh clone's `go test ./...`
// thus runs the end-to-end tests without a manual npm ci.
//
// Without npm the tests that need the fixture are skipped with a message
// saying so; under CI=true they fail instead, so CI can never pass by
// skipping. Only tests import this package.
package capapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// installTimeout bounds npm ci: on a cold cache it downloads the
// Capacitor CLI and its dependencies.
const installTimeout = 10 * time.Minute

// lockName is the lock file beside package.json (ignored by git).
const lockName = ".npm-ci.lock"

// Dir is the fixture app's folder, found from this file's place in the
// repository, so it does not depend on the test's working directory.
func Dir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("capapp: cannot locate the source file")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "capapp")
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		return "", fmt.Errorf("capapp: the fixture app is not at %s: %w", dir, err)
	}
	return filepath.Clean(dir), nil
}

// Installer installs a fixture's packages. The zero value is not usable;
// tests use Require or Ensure, which install testdata/capapp with npm.
type Installer struct {
	// LookPath finds npm (exec.LookPath).
	LookPath func(string) (string, error)
	// Install runs the installation in dir (npm ci).
	Install func(ctx context.Context, npm, dir string) error
}

// NPMCI is the Installer's default Install: npm ci preferring the local
// npm cache, so it works offline once the packages were downloaded.
func NPMCI(ctx context.Context, npm, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		tail := out.String()
		if len(tail) > 4000 {
			tail = "…" + tail[len(tail)-4000:]
		}
		return fmt.Errorf("npm ci in %s: %w\n%s", dir, err, tail)
	}
	return nil
}

// ErrNoNPM is returned by Ensure when npm is not on PATH.
var ErrNoNPM = errors.New("npm is not installed (not on PATH)")

// Ensure makes sure dir's node_modules holds every package its
// package.json declares, installing them when not. It returns ErrNoNPM,
// wrapped, when they are missing and npm is not on PATH.
func (in Installer) Ensure(ctx context.Context, dir string) error {
	if missing, err := Missing(dir); err != nil || len(missing) == 0 {
		return err
	}
	npm, err := in.LookPath("npm")
	if err != nil {
		missing, _ := Missing(dir)
		return fmt.Errorf("%w: %s lacks %s; install Node.js 20 and npm, or run npm ci --prefix %s",
			ErrNoNPM, filepath.Join(dir, "node_modules"), strings.Join(missing, ", "), dir)
	}
	unlock, err := lockFile(filepath.Join(dir, lockName))
	if err != nil {
		return fmt.Errorf("lock %s for npm ci: %w", dir, err)
	}
	defer unlock()
	// Another test binary may have installed them while this one waited.
	missing, err := Missing(dir)
	if err != nil || len(missing) == 0 {
		return err
	}
	if err := in.Install(ctx, npm, dir); err != nil {
		return err
	}
	if missing, err := Missing(dir); err != nil {
		return err
	} else if len(missing) > 0 {
		return fmt.Errorf("npm ci in %s left %s uninstalled", dir, strings.Join(missing, ", "))
	}
	return nil
}

// Missing lists the packages dir's package.json declares (dependencies
// and devDependencies) that node_modules lacks, sorted.
func Missing(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return nil, fmt.Errorf("read the fixture's package.json: %w", err)
	}
	var pkg struct {
		Dependencies    map[string]string `json:"dependencies"`
		DevDependencies map[string]string `json:"devDependencies"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, "package.json"), err)
	}
	var missing []string
	for _, deps := range []map[string]string{pkg.Dependencies, pkg.DevDependencies} {
		for name := range deps {
			_, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(name), "package.json"))
			if errors.Is(err, fs.ErrNotExist) {
				missing = append(missing, name)
			} else if err != nil {
				return nil, err
			}
		}
	}
	sort.Strings(missing)
	return missing, nil
}

var (
	once    sync.Once
	onceDir string
	onceErr error
)

// Ensure installs testdata/capapp once per test binary and returns its
// folder. The error wraps ErrNoNPM when npm is missing.
func Ensure() (string, error) {
	once.Do(func() {
		if onceDir, onceErr = Dir(); onceErr != nil {
			return
		}
		in := Installer{LookPath: exec.LookPath, Install: NPMCI}
		onceErr = in.Ensure(context.Background(), onceDir)
	})
	return onceDir, onceErr
}

// Require returns testdata/capapp with its packages installed. It skips
// the test when npm is not installed (fails it under CI=true) and fails it
// when the installation does.
func Require(t testing.TB) string {
	t.Helper()
	dir, err := Ensure()
	switch {
	case errors.Is(err, ErrNoNPM) && os.Getenv("CI") == "":
		t.Skipf("skipped: the fixture app needs npm: %v", err)
	case err != nil:
		t.Fatalf("the fixture app testdata/capapp: %v", err)
	}
	return dir
}
