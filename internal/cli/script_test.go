package cli

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/otaship/ota/internal/capapp"
	"github.com/otaship/ota/internal/daemon"
)

var updateScripts = flag.Bool("update-scripts", false, "rewrite the testscript golden files")

// TestMain lets the test binary act as otactl and otad: testscript runs
// scripts' `exec otactl ...` in-process-built child processes of it.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"otactl": func() { os.Exit(Main()) },
		"otad":   func() { os.Exit(daemon.Main()) },
	})
}

// fixtureDir is the Capacitor fixture app at the repository root.
func fixtureDir(t testing.TB) string {
	t.Helper()
	dir, err := capapp.Dir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestScripts runs the end-to-end scripts in testdata/script, each against
// its own in-process otad over a fresh bbolt file.
//
// The deploy scripts run the real npm and npx cap sync in a copy of
// testdata/capapp, whose packages capapp.Ensure installs (npm ci) when they
// are missing. Without npm they are skipped locally and fail in CI.
func TestScripts(t *testing.T) {
	fixture, err := capapp.Ensure()
	haveNode := err == nil
	switch {
	case errors.Is(err, capapp.ErrNoNPM) && os.Getenv("CI") == "":
		t.Logf("scripts needing [capapp] are skipped: %v", err)
		fixture = fixtureDir(t)
	case err != nil:
		t.Fatalf("the fixture app testdata/capapp: %v", err)
	}

	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       *updateScripts,
		Setup: func(env *testscript.Env) error {
			srv, err := startTestServer(filepath.Join(env.WorkDir, ".otad"))
			if err != nil {
				return err
			}
			env.Defer(srv.close)
			home := filepath.Join(env.WorkDir, "home")
			env.Setenv("OTACTL_SERVER", srv.URL)
			env.Setenv("HOME", home)
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
			env.Setenv("NO_COLOR", "1")
			env.Setenv("EXPIRED_TOKEN", srv.Expired)
			env.Setenv("FIXTURE", fixture)
			// OTACTL_BIN is the folder testscript put otactl and otad in, so
			// a script can run with a PATH that holds nothing else.
			bin, _, _ := strings.Cut(env.Getenv("PATH"), string(os.PathListSeparator))
			if _, err := os.Stat(filepath.Join(bin, "otactl")); err != nil {
				return fmt.Errorf("testscript's command folder is not first in PATH: %w", err)
			}
			env.Setenv("OTACTL_BIN", bin)
			// npm must stay off the network and out of the real home.
			env.Setenv("npm_config_cache", filepath.Join(home, ".npm"))
			env.Setenv("npm_config_update_notifier", "false")
			env.Setenv("npm_config_fund", "false")
			env.Setenv("npm_config_audit", "false")
			return os.WriteFile(filepath.Join(env.WorkDir, "pw.txt"), []byte(testPassword+"\n"), 0o600)
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "capapp":
				return haveNode, nil
			}
			return false, errors.New("unknown condition " + cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":   cmdExitCode,
			"cpfixture":  cmdCopyFixture,
			"mkzip":      cmdMkzip,
			"sha256file": cmdSHA256File,
			"waitaddr":   cmdWaitAddr,
		},
	})
}

// exitcode N prog [args...] runs prog like exec and checks its exit status.
// stdout and stderr can be matched afterwards as with exec.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N prog [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exitcode: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// cpfixture DIR copies the fixture app (sources, lockfile) to DIR and links
// its node_modules, so a script can build and change it freely.
func cmdCopyFixture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: cpfixture DIR")
	}
	src, dst := ts.Getenv("FIXTURE"), ts.MkAbs(args[0])
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		switch rel {
		case "node_modules", "dist", "android", "ios":
			// node_modules is linked below; it may itself be a link.
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	ts.Check(err)
	ts.Check(os.Symlink(filepath.Join(src, "node_modules"), filepath.Join(dst, "node_modules")))
}

// mkzip FILE NAME... writes a zip holding the named entries, each with a
// little content, whatever the names (for zip-slip regressions).
func cmdMkzip(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: mkzip FILE NAME...")
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range args[1:] {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		ts.Check(err)
		_, err = w.Write([]byte("content of " + name + "\n"))
		ts.Check(err)
	}
	ts.Check(zw.Close())
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), buf.Bytes(), 0o644))
}

// sha256file FILE checks that the last command's stdout holds the file's
// SHA-256 (what `sha256sum FILE` prints), e.g. after `otactl bundle zip`.
func cmdSHA256File(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: sha256file FILE")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	sum := sha256.Sum256(b)
	hexSum := hex.EncodeToString(sum[:])
	found := strings.Contains(ts.ReadFile("stdout"), hexSum)
	if found == neg {
		ts.Fatalf("stdout contains sha256 %s of %s: %v, want %v", hexSum, args[0], found, !neg)
	}
}

// waitaddr FILE waits for otad's --addr-file and points OTACTL_SERVER at it.
func cmdWaitAddr(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitaddr FILE")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(ts.MkAbs(args[0]))
		if addr := strings.TrimSpace(string(b)); err == nil && addr != "" {
			ts.Setenv("OTACTL_SERVER", "http://"+addr)
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("otad did not write %s within 20s", args[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
