package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otaship/ota/internal/cli/iostreams"
	"github.com/otaship/ota/pkg/ota"
)

const testAppID = "com.example.capapp"

// fakeExit is a child's non-zero exit, as *exec.ExitError reports it.
type fakeExit int

func (e fakeExit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
func (e fakeExit) ExitCode() int { return int(e) }

// fakeRunner records child processes and plays them with handlers keyed by
// the command line ("npm run generate").
type fakeRunner struct {
	mu       sync.Mutex
	calls    []string
	handlers map[string]func(c Cmd) error
	// env is the environment added to each call, by command line.
	env map[string][]string
}

func (r *fakeRunner) Run(_ context.Context, c Cmd) error {
	line := strings.Join(append([]string{c.Name}, c.Args...), " ")
	r.mu.Lock()
	r.calls = append(r.calls, line)
	if r.env == nil {
		r.env = map[string][]string{}
	}
	r.env[line] = c.Env
	h := r.handlers[line]
	r.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(c)
}

// testEnv is a real server, a Capacitor project folder and the settings
// otactl sees (environment, user config dir) for one test.
type testEnv struct {
	t       *testing.T
	srv     *testServer
	project string
	env     map[string]string
	runner  *fakeRunner
	look    func(string) (string, error)
	// now is the clock of the next runs; nil means time.Now.
	now func() time.Time
	// ttyStderr makes the next runs' stderr count as a terminal.
	ttyStderr bool
	// version is what a test deploys, when it names one.
	version string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	srv, err := startTestServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.close)
	project := t.TempDir()
	writeFile(t, filepath.Join(project, "capacitor.config.json"), `{"appId":"`+testAppID+`","appName":"capapp","webDir":"dist"}`)
	writeFile(t, filepath.Join(project, "package.json"), `{"name":"capapp","version":"1.0.0","scripts":{"generate":"node scripts/generate.js"}}`)
	e := &testEnv{
		t: t, srv: srv, project: project,
		env: map[string]string{
			"OTACTL_SERVER":   srv.URL,
			"OTACTL_TOKEN":    srv.Token,
			"XDG_CONFIG_HOME": filepath.Join(t.TempDir(), "config"),
			"NO_COLOR":        "1",
		},
		look: func(name string) (string, error) { return "/usr/bin/" + name, nil },
	}
	e.runner = &fakeRunner{handlers: map[string]func(Cmd) error{
		"npm run generate": func(c Cmd) error { e.generate("1"); return nil },
	}}
	return e
}

// generate writes a web build into the project's dist/.
func (e *testEnv) generate(marker string) {
	e.t.Helper()
	writeFile(e.t, filepath.Join(e.project, "dist", "index.html"), "<html>build "+marker+"</html>")
	writeFile(e.t, filepath.Join(e.project, "dist", "assets", "app.js"), "CapacitorUpdater.notifyAppReady(); // "+marker)
}

type result struct {
	code        int
	stdout, err string
}

// run runs otactl with args and stdin in a fresh Factory, as a new process
// would.
func (e *testEnv) run(stdin string, args ...string) result {
	e.t.Helper()
	io, in, out, errOut := iostreams.Test()
	io.SetStderrTTY(e.ttyStderr)
	in.WriteString(stdin)
	f := &Factory{
		IO:         io,
		Getenv:     func(k string) string { return e.env[k] },
		Now:        time.Now,
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
		Runner:     e.runner,
		LookPath:   e.look,
		WorkDir:    e.project,
	}
	if e.now != nil {
		f.Now = e.now
	}
	code := Run(context.Background(), f, args)
	return result{code: code, stdout: out.String(), err: errOut.String()}
}

func (e *testEnv) mustRun(args ...string) result {
	e.t.Helper()
	r := e.run("", args...)
	if r.code != 0 {
		e.t.Fatalf("otactl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.err)
	}
	return r
}

// field returns the value of a "key:   value" line of deploy's output.
func field(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLogin(t *testing.T) {
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"ok", testPassword + "\n", []string{"login", "-u", testUser, "--password-stdin"}, 0, "Logged in to"},
		{"ok without newline", testPassword, []string{"login", "-u", testUser, "--password-stdin"}, 0, "Logged in to"},
		{"wrong password", "nope\n", []string{"login", "-u", testUser, "--password-stdin"}, ExitAuth, "refused"},
		{"unknown user", testPassword + "\n", []string{"login", "-u", "mallory", "--password-stdin"}, ExitAuth, "refused"},
		{"no terminal, no --password-stdin", "", []string{"login", "-u", testUser}, ExitUsage, "--password-stdin"},
		{"no terminal, no user", "", []string{"login", "--password-stdin"}, ExitUsage, "--username"},
		{"empty stdin", "", []string{"login", "-u", testUser, "--password-stdin"}, ExitError, "stdin is empty"},
		{"positional password refused", "", []string{"login", "admin", "secret"}, ExitUsage, "otactl login takes no arguments, but got 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			delete(e.env, "OTACTL_TOKEN")
			r := e.run(tt.stdin, tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.err, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d containing %q", r.code, r.err, tt.wantCode, tt.wantErr)
			}
			credFile := filepath.Join(e.env["XDG_CONFIG_HOME"], "otactl", "credentials.json")
			if tt.wantCode != 0 {
				if _, err := os.Stat(credFile); err == nil {
					t.Error("a failed login stored credentials")
				}
				return
			}
			fi, err := os.Stat(credFile)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("credentials mode = %v, want 0600", fi.Mode().Perm())
			}
			di, _ := os.Stat(filepath.Dir(credFile))
			if di.Mode().Perm() != 0o700 {
				t.Errorf("config dir mode = %v, want 0700", di.Mode().Perm())
			}
			// The stored token works, and the server is remembered.
			delete(e.env, "OTACTL_SERVER")
			e.mustRun("deploy", "web")
			e.mustRun("logout")
			if r := e.run("", "channels"); r.code != ExitAuth || !strings.Contains(r.err, "otactl login") {
				t.Errorf("after logout: exit %d, stderr %q; want %d and a login hint", r.code, r.err, ExitAuth)
			}
		})
	}
}

func TestBadTokens(t *testing.T) {
	e := newTestEnv(t)
	for name, tok := range map[string]string{"expired": e.srv.Expired, "garbage": "not-a-jwt"} {
		t.Run(name, func(t *testing.T) {
			// OTACTL_TOKEN overrides the stored login, so "run: otactl
			// login" cannot help: the variable is named instead.
			e.env["OTACTL_TOKEN"] = tok
			r := e.run("", "status")
			if r.code != ExitAuth || !strings.Contains(r.err, "the token in OTACTL_TOKEN was refused") {
				t.Fatalf("exit %d, stderr %q; want %d and a hint naming OTACTL_TOKEN", r.code, r.err, ExitAuth)
			}
			if strings.Contains(r.err, "run: otactl login") {
				t.Errorf("stderr %q says to log in, which cannot help", r.err)
			}
			// The stored token, refused the same way, says to log in.
			delete(e.env, "OTACTL_TOKEN")
			writeFile(t, filepath.Join(e.env["XDG_CONFIG_HOME"], "otactl", "credentials.json"),
				`{"current":"`+e.srv.URL+`","tokens":{"`+e.srv.URL+`":{"token":"`+tok+`","username":"admin"}}}`)
			r = e.run("", "status")
			if r.code != ExitAuth || strings.Count(r.err, "otactl login") != 1 || strings.Contains(r.err, "OTACTL_TOKEN") {
				t.Errorf("stored token: exit %d, stderr %q; want %d and one login hint", r.code, r.err, ExitAuth)
			}
		})
	}
}

func TestServerUnreachable(t *testing.T) {
	e := newTestEnv(t)
	e.srv.close()
	r := e.run("", "status")
	if r.code != ExitServer {
		t.Fatalf("exit %d, stderr %q; want %d", r.code, r.err, ExitServer)
	}
}

func TestDeployWeb(t *testing.T) {
	e := newTestEnv(t)
	r := e.mustRun("deploy", "web")
	if got := strings.Join(e.runner.calls, "; "); got != "npm run generate; npx cap sync" {
		t.Errorf("steps = %q, want npm run generate then npx cap sync", got)
	}
	for key, want := range map[string]string{"app": testAppID, "channel": "stable", "version": "1.0.0", "url": e.srv.URL + "/api/ota/bundle/"} {
		if got := field(r.stdout, key); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want %q in:\n%s", key, got, want, r.stdout)
		}
	}

	// The device endpoint offers what was deployed, with the checksum printed.
	client, _ := ota.NewClient(e.srv.URL)
	up, err := client.CheckUpdate(context.Background(), ota.UpdateRequest{
		AppID: testAppID, Platform: "android", DeviceID: "00000000-0000-4000-8000-000000000001",
		VersionName: "0.9.0", VersionBuild: "0.9.0", PluginVersion: "7.0.0",
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.Version != "1.0.0" || field(r.stdout, "checksum") != up.Checksum {
		t.Errorf("device offered %+v; deploy printed:\n%s", up, r.stdout)
	}

	// Same version, same bytes: an idempotent retry.
	r = e.mustRun("deploy", "web", "--skip-build")
	if !strings.Contains(r.err, "already uploaded") {
		t.Errorf("retry stderr = %q, want 'already uploaded'", r.err)
	}
	// Same version, other bytes: a conflict.
	e.generate("2")
	r = e.run("", "deploy", "web", "--skip-build")
	if r.code != ExitConflict || !strings.Contains(r.err, "new version") && !strings.Contains(r.err, "bump the version") {
		t.Errorf("conflict: exit %d stderr %q, want %d with a hint", r.code, r.err, ExitConflict)
	}
	// A new version, as JSON.
	r = e.mustRun("deploy", "web", "1.1.0", "--skip-build", "-o", "json", "--notes", "second")
	var dr DeployResult
	if err := json.Unmarshal([]byte(r.stdout), &dr); err != nil {
		t.Fatalf("deploy -o json printed %q: %v", r.stdout, err)
	}
	if dr.Upload == nil || dr.Upload.Bundle.Version != "1.1.0" || dr.Upload.Previous != "1.0.0" || dr.Upload.Bundle.Notes != "second" {
		t.Errorf("JSON result = %+v", dr.Upload)
	}
}

func TestDeployWebSteps(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		handlers  map[string]func(Cmd) error
		wantCode  int
		wantCalls string
		wantErr   string
	}{
		{"build-cmd through sh -c", []string{"--build-cmd", "make web"}, nil, 0, "sh -c make web; npx cap sync", ""},
		{"no-sync", []string{"--no-sync"}, nil, 0, "npm run generate", ""},
		{"skip-build", []string{"--skip-build"}, nil, 0, "", ""},
		{"build fails", nil, map[string]func(Cmd) error{"npm run generate": func(Cmd) error { return fakeExit(1) }},
			ExitBuild, "npm run generate", `build failed: "npm run generate" exited with status 1`},
		{"sync fails", nil, map[string]func(Cmd) error{"npx cap sync": func(Cmd) error { return fakeExit(2) }},
			ExitBuild, "npm run generate; npx cap sync", `sync failed: "npx cap sync" exited with status 2`},
		{"skip-build with build-cmd", []string{"--skip-build", "--build-cmd", "x"}, nil, ExitUsage, "", "cannot be combined"},
		{"too many args", []string{"1.0.0", "extra"}, nil, ExitUsage, "", "otactl deploy web takes at most 1 argument(s) (VERSION), but got 2: usage: otactl deploy web [VERSION] [flags]\nsee: otactl deploy web --help\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.generate("1") // so --skip-build has something to ship
			for k, h := range tt.handlers {
				e.runner.handlers[k] = h
			}
			r := e.run("", append([]string{"deploy", "web", "--dry-run"}, tt.args...)...)
			if r.code != tt.wantCode || !strings.Contains(r.err, tt.wantErr) {
				t.Fatalf("exit %d stderr %q, want %d containing %q", r.code, r.err, tt.wantCode, tt.wantErr)
			}
			if got := strings.Join(e.runner.calls, "; "); got != tt.wantCalls {
				t.Errorf("steps = %q, want %q", got, tt.wantCalls)
			}
		})
	}
}

// TestDeployWebPreflight: what can fail fast fails before the build, with
// the usage code for a bad version or channel.
func TestDeployWebPreflight(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		setup    func(e *testEnv)
		wantCode int
		wantErr  string
	}{
		{"version with a trailing space", []string{"1.5.0 "}, nil, ExitUsage, `VERSION: version "1.5.0 " has white space around it; use "1.5.0"`},
		{"version not semver-like", []string{"latest"}, nil, ExitUsage, `VERSION: web bundle version "latest" must be semver-like`},
		{"reserved version", []string{"builtin"}, nil, ExitUsage, `is reserved by the updater plugin`},
		{"bad version in package.json", nil, func(e *testEnv) {
			writeFile(t, filepath.Join(e.project, "package.json"), `{"name":"capapp","version":"v1.0.0","scripts":{"generate":"x"}}`)
		}, ExitUsage, `the version in package.json: web bundle version "v1.0.0" must be semver-like`},
		{"bad channel", []string{"--channel", "Beta"}, nil, ExitUsage, `--channel: channel name "Beta" is invalid`},
		{"token refused", nil, func(e *testEnv) { e.env["OTACTL_TOKEN"] = "not-a-jwt" }, ExitAuth, "the token in OTACTL_TOKEN was refused"},
		{"server down", nil, func(e *testEnv) { e.env["OTACTL_SERVER"] = "http://127.0.0.1:1" }, ExitServer, "check the login to http://127.0.0.1:1 before building"},
		{"packages not installed", nil, func(e *testEnv) {
			writeFile(t, filepath.Join(e.project, "package.json"),
				`{"name":"capapp","version":"1.0.0","scripts":{"generate":"x"},"dependencies":{"@capacitor/core":"^7"},"devDependencies":{"@capacitor/cli":"^7"}}`)
		}, ExitBuild, "build not started: the packages of package.json are not installed in PROJECT (no @capacitor/cli, @capacitor/core in node_modules): run npm ci (or npm install) in PROJECT"},
		{"one package not installed", nil, func(e *testEnv) {
			writeFile(t, filepath.Join(e.project, "package.json"),
				`{"name":"capapp","version":"1.0.0","scripts":{"generate":"x"},"dependencies":{"@capacitor/core":"^7","vite":"^5"}}`)
			writeFile(t, filepath.Join(e.project, "node_modules", "@capacitor", "core", "package.json"), `{"version":"7.0.0"}`)
		}, ExitBuild, "vite, a package of package.json, is not installed in PROJECT: run npm ci (or npm install) in PROJECT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			r := e.run("", append([]string{"deploy", "web"}, tt.args...)...)
			if wantErr := strings.ReplaceAll(tt.wantErr, "PROJECT", e.project); r.code != tt.wantCode || !strings.Contains(r.err, wantErr) {
				t.Fatalf("exit %d stderr %q, want %d containing %q", r.code, r.err, tt.wantCode, wantErr)
			}
			if len(e.runner.calls) != 0 {
				t.Errorf("ran %q before failing", e.runner.calls)
			}
		})
	}
}

// TestDeployWebVersionReachesBuild: the version deployed is passed to the
// build as OTA_VERSION, with a warning when package.json names another,
// and otad's warning about unchanged bytes is shown.
func TestDeployWebVersionReachesBuild(t *testing.T) {
	e := newTestEnv(t)
	r := e.mustRun("deploy", "web")
	for _, step := range []string{"npm run generate", "npx cap sync"} {
		if got := e.runner.env[step]; !slices.Equal(got, []string{"OTA_VERSION=1.0.0"}) {
			t.Errorf("%s ran with %q, want OTA_VERSION=1.0.0", step, got)
		}
	}
	if strings.Contains(r.err, "warning") {
		t.Errorf("stderr %q warns about a version that is package.json's", r.err)
	}

	// The fake build ignores OTA_VERSION: the same bytes under 1.3.0.
	r = e.mustRun("deploy", "web", "1.3.0")
	if got := e.runner.env["npm run generate"]; !slices.Equal(got, []string{"OTA_VERSION=1.3.0"}) {
		t.Errorf("build ran with %q, want OTA_VERSION=1.3.0", got)
	}
	for _, want := range []string{
		"warning: deploying 1.3.0, but package.json says 1.0.0; the build gets OTA_VERSION=1.3.0",
		"warning: web 1.3.0 has the same bytes (sha256 ", "as 1.0.0 on channel stable: the build did not change",
	} {
		if !strings.Contains(r.err, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.err)
		}
	}
	r = e.mustRun("deploy", "web", "1.4.0", "--skip-build", "-o", "json")
	var dr DeployResult
	if err := json.Unmarshal([]byte(r.stdout), &dr); err != nil {
		t.Fatal(err)
	}
	if dr.Upload == nil || len(dr.Upload.Warnings) != 1 || !strings.Contains(r.err, "warning: web 1.4.0 has the same bytes") {
		t.Errorf("-o json: upload %+v, stderr %q", dr.Upload, r.err)
	}
}

// TestDeployWebNodeHint: a step that fails the way npm and npx do when the
// project's packages are missing says to install them.
func TestDeployWebNodeHint(t *testing.T) {
	e := newTestEnv(t)
	e.runner.handlers["npx cap sync"] = func(c Cmd) error {
		fmt.Fprintln(c.Stderr, "npm error could not determine executable to run")
		return fakeExit(1)
	}
	r := e.run("", "deploy", "web")
	want := `sync failed: "npx cap sync" exited with status 1: are the project's packages installed? run npm ci (or npm install) in ` + e.project
	if r.code != ExitBuild || !strings.Contains(r.err, want) {
		t.Errorf("exit %d stderr %q, want %d containing %q", r.code, r.err, ExitBuild, want)
	}
}

func TestDeployWebChecksAndDryRun(t *testing.T) {
	e := newTestEnv(t)
	writeFile(t, filepath.Join(e.project, "dist", "index.html"), "<html></html>")
	writeFile(t, filepath.Join(e.project, "dist", "app.js"), "console.log('forgot the plugin')")
	r := e.run("", "deploy", "web", "--skip-build")
	if r.code != ExitError || !strings.Contains(r.err, "notifyAppReady") || !strings.Contains(r.err, "--no-code-check") {
		t.Fatalf("exit %d stderr %q, want a notifyAppReady error naming --no-code-check", r.code, r.err)
	}
	// Dry run: no token needed, nothing uploaded, the zip kept.
	delete(e.env, "OTACTL_TOKEN")
	r = e.mustRun("deploy", "web", "--skip-build", "--no-code-check", "--dry-run", "-o", "json")
	var dr DeployResult
	if err := json.Unmarshal([]byte(r.stdout), &dr); err != nil {
		t.Fatal(err)
	}
	if !dr.DryRun || dr.Upload != nil {
		t.Errorf("dry run result = %+v", dr)
	}
	b, err := os.ReadFile(dr.File)
	if err != nil {
		t.Fatalf("dry run zip not kept: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(dr.File)) })
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != dr.SHA256 || int64(len(b)) != dr.Size {
		t.Errorf("printed sha256 %s size %d do not match the file", dr.SHA256, dr.Size)
	}
	// Without a token the real deploy fails before building.
	e.runner.calls = nil
	r = e.run("", "deploy", "web")
	if r.code != ExitAuth || len(e.runner.calls) != 0 {
		t.Errorf("exit %d with steps %v, want %d before any build", r.code, e.runner.calls, ExitAuth)
	}
}

func TestChannelOperations(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("deploy", "web", "1.0.0")
	e.generate("2")
	e.mustRun("deploy", "web", "1.1.0", "--skip-build")
	e.generate("3")
	e.mustRun("deploy", "web", "1.2.0", "--skip-build", "--channel", "beta")

	r := e.mustRun("status")
	for _, want := range []string{"App " + testAppID, "stable", "1.1.0", "beta", "1.2.0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := e.mustRun("rollback", "stable"); r.stdout != "stable: 1.1.0 → 1.0.0\n" {
		t.Errorf("rollback printed %q", r.stdout)
	}
	if r := e.run("", "rollback", "nosuch"); r.code != ExitError || !strings.Contains(r.err, "nosuch") {
		t.Errorf("rollback of a missing channel: exit %d stderr %q", r.code, r.err)
	}
	if r := e.mustRun("promote", "1.2.0", "--from", "beta", "--to", "stable"); r.stdout != "stable: 1.0.0 → 1.2.0 (from beta)\n" {
		t.Errorf("promote printed %q", r.stdout)
	}
	if r := e.run("", "promote", "1.2.0", "--from", "beta"); r.code != ExitUsage {
		t.Errorf("promote without --to: exit %d", r.code)
	}
	if r := e.mustRun("delete", "stable", "1.2.0"); !strings.Contains(r.stdout, "stable: deleted 1.2.0; now serving") {
		t.Errorf("delete printed %q", r.stdout)
	}

	var ch []ota.Channel
	r = e.mustRun("channels", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &ch); err != nil || len(ch) != 2 {
		t.Fatalf("channels -o json = %q (%v)", r.stdout, err)
	}
	r = e.mustRun("channels")
	if !strings.HasPrefix(r.stdout, "CHANNEL") || !strings.Contains(r.stdout, "beta") {
		t.Errorf("channels table:\n%s", r.stdout)
	}

	var page ota.HistoryPage
	r = e.mustRun("history", "--limit", "2", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 || page.Next == 0 || page.Events[0].Type != ota.EventDelete {
		t.Fatalf("history page = %+v", page)
	}
	r = e.mustRun("history", "--before", fmt.Sprint(page.Next), "--limit", "100")
	if !strings.Contains(r.stdout, "upload") || strings.Contains(r.stdout, "delete") {
		t.Errorf("second page:\n%s", r.stdout)
	}
	r = e.mustRun("history", "beta")
	if strings.Contains(r.stdout, "stable") {
		t.Errorf("history beta shows stable events:\n%s", r.stdout)
	}
	if r := e.run("", "history", "--limit", "-1"); r.code != ExitUsage {
		t.Errorf("history --limit -1: exit %d", r.code)
	}
}

func TestDeployAPK(t *testing.T) {
	apkDir := func(e *testEnv) string {
		return filepath.Join(e.project, "android", "app", "build", "outputs", "apk", "debug")
	}
	writeAPK := func(e *testEnv) {
		writeFile(e.t, filepath.Join(apkDir(e), "app-debug.apk"), "PK\x03\x04fake apk")
	}
	dockerLine := func(e *testEnv, task string) string {
		return "docker run --rm -v " + e.project + ":/project mingc/android-build-box bash -c cd /project/android && ./gradlew " + task
	}
	tests := []struct {
		name     string
		args     []string
		setup    func(e *testEnv)
		wantCode int
		wantErr  string
	}{
		{"ok", nil, func(e *testEnv) {
			e.runner.handlers[dockerLine(e, ":app:assembleDebug")] = func(Cmd) error { writeAPK(e); return nil }
		}, 0, "Deployed"},
		{"release", []string{"--release"}, func(e *testEnv) {
			e.runner.handlers[dockerLine(e, ":app:assembleRelease")] = func(Cmd) error {
				writeFile(e.t, filepath.Join(e.project, "android/app/build/outputs/apk/release/app-release.apk"), "PK\x03\x04rel")
				return nil
			}
		}, 0, "Deployed"},
		{"prebuilt apk, relative path", []string{"--apk", "out/app.apk"}, func(e *testEnv) {
			writeFile(e.t, filepath.Join(e.project, "out", "app.apk"), "PK\x03\x04prebuilt")
		}, 0, "Deployed"},
		{"docker missing", nil, func(e *testEnv) {
			e.look = func(string) (string, error) { return "", errors.New("not found") }
		}, ExitBuild, "install Docker"},
		{"daemon down", nil, func(e *testEnv) {
			e.runner.handlers[dockerLine(e, ":app:assembleDebug")] = func(c Cmd) error {
				fmt.Fprintln(c.Stderr, "docker: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
				return fakeExit(1)
			}
		}, ExitBuild, "Docker daemon is not running"},
		{"no apk produced", nil, nil, ExitBuild, "no APK was found"},
		{"no android folder", nil, func(e *testEnv) { os.RemoveAll(filepath.Join(e.project, "android")) }, ExitUsage,
			"no android/ folder in " + "PROJECT" + ": add the platform first with: npx cap add android"},
		{"no android folder, no platform package", nil, func(e *testEnv) {
			os.RemoveAll(filepath.Join(e.project, "android"))
			os.RemoveAll(filepath.Join(e.project, "node_modules", "@capacitor", "android"))
		}, ExitUsage, "@capacitor/android is not installed: install it, then add the platform: npm install @capacitor/android && npx cap add android"},
		{"platform package missing", nil, func(e *testEnv) {
			os.RemoveAll(filepath.Join(e.project, "node_modules", "@capacitor", "android"))
		}, ExitBuild, "sync not started: npx cap sync android needs @capacitor/android, which is not installed"},
		{"platform package missing, no sync", []string{"--skip-build"}, func(e *testEnv) {
			os.RemoveAll(filepath.Join(e.project, "node_modules", "@capacitor", "android"))
			e.runner.handlers[dockerLine(e, ":app:assembleDebug")] = func(Cmd) error { writeAPK(e); return nil }
		}, 0, "Deployed"},
		{"bad version", []string{"--channel", "apk"}, func(e *testEnv) { e.version = "2.0 .0" }, ExitUsage, `VERSION: version "2.0 .0" contains ' '`},
		{"bad channel", []string{"--channel", "APK"}, nil, ExitUsage, `--channel: channel name "APK" is invalid`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.version = "2.0.0"
			if err := os.MkdirAll(filepath.Join(e.project, "android"), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(e.project, "node_modules", "@capacitor", "android", "package.json"), `{"version":"7.0.0"}`)
			if tt.setup != nil {
				tt.setup(e)
			}
			r := e.run("", append([]string{"deploy", "apk", e.version}, tt.args...)...)
			if wantErr := strings.ReplaceAll(tt.wantErr, "PROJECT", e.project); r.code != tt.wantCode || !strings.Contains(r.err, wantErr) {
				t.Fatalf("exit %d stderr %q, want %d containing %q", r.code, r.err, tt.wantCode, tt.wantErr)
			}
			if tt.wantCode != 0 {
				return
			}
			wantSteps := "npm run generate; npx cap sync android; docker run"
			if slices.Contains(tt.args, "--skip-build") {
				wantSteps = "docker run"
			}
			if len(tt.args) > 0 && tt.args[0] == "--apk" {
				if len(e.runner.calls) != 0 {
					t.Errorf("--apk ran steps %v", e.runner.calls)
				}
			} else if !strings.HasPrefix(strings.Join(e.runner.calls, "; "), wantSteps) {
				t.Errorf("steps = %v", e.runner.calls)
			}
			if field(r.stdout, "channel") != "apk" || !strings.HasSuffix(field(r.stdout, "url"), ".apk") {
				t.Errorf("stdout:\n%s", r.stdout)
			}
		})
	}
}

func TestBundleZipAndVerify(t *testing.T) {
	e := newTestEnv(t)
	e.generate("z")
	r1 := e.mustRun("bundle", "zip", "--out", "one.zip")
	r2 := e.mustRun("bundle", "zip", "dist", "--out", filepath.Join(e.project, "two.zip"))
	if r1.err+r2.err != "" && strings.Contains(r1.err+r2.err, "deprecated") {
		t.Errorf("--out warned: %q", r1.err+r2.err)
	}
	sum := func(name string) string {
		b, err := os.ReadFile(filepath.Join(e.project, name))
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	want := "Checksum SHA256: " + sum("one.zip") + "\n"
	if !strings.HasPrefix(r1.stdout, want) || !strings.HasPrefix(r2.stdout, want) {
		t.Errorf("outputs %q and %q, want both to start with %q", r1.stdout, r2.stdout, want)
	}
	if !strings.Contains(r1.stdout, "Saved to "+filepath.Join(e.project, "one.zip")) {
		t.Errorf("no Saved to line: %q", r1.stdout)
	}
	// Default name, as @capgo/cli: <appId>_<version>.zip.
	e.mustRun("bundle", "zip")
	if _, err := os.Stat(filepath.Join(e.project, testAppID+"_1.0.0.zip")); err != nil {
		t.Error(err)
	}
	// -o is the output format here too; -o FILE and --output FILE, the old
	// spelling of --out, still work and say so.
	r := e.mustRun("bundle", "zip", "-o", "json")
	var zr BundleZipResult
	if err := json.Unmarshal([]byte(r.stdout), &zr); err != nil || zr.Filename != filepath.Join(e.project, testAppID+"_1.0.0.zip") || zr.Checksum == "" {
		t.Errorf("bundle zip -o json printed %q (%v)", r.stdout, err)
	}
	for _, flag := range []string{"-o", "--output"} {
		r := e.mustRun("bundle", "zip", flag, "old.zip")
		if !strings.Contains(r.err, "warning: -o/--output FILE is deprecated for bundle zip: use --out old.zip") ||
			!strings.Contains(r.stdout, "Saved to "+filepath.Join(e.project, "old.zip")) {
			t.Errorf("bundle zip %s old.zip: stdout %q stderr %q", flag, r.stdout, r.err)
		}
	}
	if r := e.run("", "bundle", "zip", "--out", "a.zip", "-o", "b.zip"); r.code != ExitUsage || !strings.Contains(r.err, "both name the zip file") {
		t.Errorf("--out with -o FILE: exit %d stderr %q", r.code, r.err)
	}
	e.env["OTACTL_OUTPUT"] = "json"
	if r := e.mustRun("bundle", "zip", "--out", "env.zip"); !strings.HasPrefix(r.stdout, "{") {
		t.Errorf("OTACTL_OUTPUT=json: bundle zip printed %q", r.stdout)
	}
	delete(e.env, "OTACTL_OUTPUT")

	r = e.mustRun("bundle", "verify", "one.zip")
	if !strings.Contains(r.stdout, "one.zip: OK") {
		t.Errorf("verify: %q", r.stdout)
	}
	tests := []struct {
		name  string
		files []string
		want  string
	}{
		{"zip slip", []string{"index.html", "../evil"}, "would be refused"},
		{"absolute", []string{"index.html", "/etc/passwd"}, "would be refused"},
		{"no index", []string{"app.js"}, "index.html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(e.project, "bad.zip")
			writeZip(t, path, tt.files...)
			r := e.run("", "bundle", "verify", path)
			if r.code == 0 || !strings.Contains(r.err, tt.want) {
				t.Errorf("exit %d stderr %q, want failure containing %q", r.code, r.err, tt.want)
			}
		})
	}
	if r := e.run("", "bundle", "verify", "missing.zip"); r.code == 0 {
		t.Error("verify of a missing file succeeded")
	}
}

// TestBundleZipDefaultName: outside a Capacitor project the zip is named
// after the folder, never "..zip", and never inside the folder it holds.
func TestBundleZipDefaultName(t *testing.T) {
	root := t.TempDir()
	web := filepath.Join(root, "site", "web")
	writeFile(t, filepath.Join(web, "index.html"), "<html></html>")
	writeFile(t, filepath.Join(web, "app.js"), "CapacitorUpdater.notifyAppReady()")
	tests := []struct {
		name, workDir, dir, want string
	}{
		{"folder named", filepath.Join(root, "site"), "web", filepath.Join(root, "site", "web.zip")},
		{"dot inside the folder", web, ".", filepath.Join(root, "site", "web.zip")},
		{"absolute path from elsewhere", root, web, filepath.Join(root, "web.zip")},
		{"from a subfolder", filepath.Join(web, "sub"), "..", filepath.Join(root, "site", "web.zip")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.MkdirAll(tt.workDir, 0o755); err != nil {
				t.Fatal(err)
			}
			io, _, out, errOut := iostreams.Test()
			f := &Factory{IO: io, Getenv: func(string) string { return "" }, WorkDir: tt.workDir}
			// XDG_CONFIG_HOME is unset: no user settings apply.
			if code := Run(context.Background(), f, []string{"bundle", "zip", tt.dir}); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out.String(), "Saved to "+tt.want+"\n") {
				t.Errorf("stdout %q, want Saved to %s", out, tt.want)
			}
			if _, err := os.Stat(tt.want); err != nil {
				t.Error(err)
			}
			os.Remove(tt.want)
		})
	}
}

func writeZip(t *testing.T, path string, names ...string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "content of %s", n)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestUsageAndVersion(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"nosuch"}, ExitUsage, ""},
		{[]string{"deploy", "nosuch"}, ExitUsage, ""},
		{[]string{"bundle"}, 0, "Available Commands"},
		{[]string{"status", "--nosuch"}, ExitUsage, ""},
		{[]string{"rollback"}, ExitUsage, ""},
		{[]string{"delete", "stable"}, ExitUsage, ""},
		{[]string{"status", "-o", "yaml"}, ExitError, ""},
		{[]string{"version"}, 0, "otactl "},
		{[]string{"completion", "bash"}, 0, "bash completion"},
		{[]string{"completion", "tcsh"}, ExitUsage, ""},
		{[]string{"--help"}, 0, "Exit codes:"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := e.run("", tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.stdout, tt.wantOut) {
				t.Errorf("exit %d stdout %q, want %d containing %q (stderr %q)", r.code, r.stdout, tt.wantCode, tt.wantOut, r.err)
			}
		})
	}
	var v Versions
	r := e.mustRun("version", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Server == nil {
		t.Errorf("version -o json = %q (%v), want the server's version too", r.stdout, err)
	}
}

func TestAppIDPrecedence(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("deploy", "web")
	// A flag beats the environment, which beats the project.
	e.env["OTACTL_APP_ID"] = "com.other.app"
	if r := e.run("", "channels"); r.code != ExitError || !strings.Contains(r.err, "com.other.app") {
		t.Errorf("env app id: exit %d stderr %q", r.code, r.err)
	}
	if r := e.run("", "channels", "--app-id", testAppID); r.code != 0 {
		t.Errorf("flag app id: exit %d stderr %q", r.code, r.err)
	}
	// otactl.yaml beside capacitor.config.json beats nothing but loses to env.
	delete(e.env, "OTACTL_APP_ID")
	writeFile(t, filepath.Join(e.project, "otactl.yaml"), "app_id: com.yaml.app\n")
	if r := e.run("", "channels"); r.code != ExitError || !strings.Contains(r.err, "com.yaml.app") {
		t.Errorf("project file app id: exit %d stderr %q", r.code, r.err)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("x"), ExitError},
		{flagErrorf("bad"), ExitUsage},
		{fmt.Errorf("wrapped: %w", &AuthError{Err: errors.New("no token")}), ExitAuth},
		{&ota.APIError{Status: 401}, ExitAuth},
		{fmt.Errorf("upload: %w", &ota.APIError{Status: 409}), ExitConflict},
		{&ota.APIError{Status: 404}, ExitError},
		{&ota.APIError{Status: 502}, ExitServer},
		{&StepError{Step: "build", Status: 1}, ExitBuild},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestDeployProgressBar(t *testing.T) {
	e := newTestEnv(t)
	// Big enough that the bar has something to draw.
	writeFile(t, filepath.Join(e.project, "dist", "index.html"), "<html>"+strings.Repeat("x", 300<<10)+"</html>")
	writeFile(t, filepath.Join(e.project, "dist", "app.js"), "notifyAppReady()")
	r := e.mustRun("deploy", "web", "--skip-build")
	if strings.Contains(r.err, "uploading ") && strings.Contains(r.err, "%") {
		t.Errorf("progress bar drawn on a non-terminal stderr: %q", r.err)
	}
	e.ttyStderr = true
	r = e.mustRun("deploy", "web", "1.0.1", "--skip-build")
	if !strings.Contains(r.err, "100%") || !strings.Contains(r.err, "B/s)") {
		t.Errorf("no finished progress bar with bytes on a terminal stderr: %q", r.err)
	}
	if strings.Contains(r.err, "\x1b[3") {
		t.Errorf("colour codes despite NO_COLOR: %q", r.err)
	}
}

func TestStoredTokenExpiry(t *testing.T) {
	e := newTestEnv(t)
	delete(e.env, "OTACTL_TOKEN")
	if r := e.run(testPassword+"\n", "login", "-u", testUser, "--password-stdin"); r.code != 0 {
		t.Fatalf("login: %d %s", r.code, r.err)
	}
	// Past the token's lifetime (the server's TTL is an hour), commands
	// fail before any build or request.
	e.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	r := e.run("", "deploy", "web")
	if r.code != ExitAuth || !strings.Contains(r.err, "expired") || !strings.Contains(r.err, "otactl login") {
		t.Errorf("exit %d stderr %q, want %d saying the login expired", r.code, r.err, ExitAuth)
	}
	if len(e.runner.calls) != 0 {
		t.Errorf("build ran with an expired login: %v", e.runner.calls)
	}
	e.now = nil
	e.mustRun("deploy", "web")
}
