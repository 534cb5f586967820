package daemon

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/pkg/ota"
)

// testPassword satisfies the password rules.
const testPassword = "correct horse battery"

// syncBuffer collects output written from several goroutines (the server
// logs from its handlers).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is what one otad invocation left behind.
type result struct {
	code           int
	stdout, stderr string
}

// otad runs one command line in-process with the minimum bcrypt cost and
// the given extra environment.
func otad(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut syncBuffer
	code := run(t.Context(), args, strings.NewReader(stdin), &out, &errOut, testEnv(env))
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// testEnv is a getenv over env plus the test bcrypt cost.
func testEnv(env map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == envBcryptCost {
			return "4"
		}
		return ""
	}
}

// runningServer is an otad serve running in the background of a test.
type runningServer struct {
	t      *testing.T
	url    string
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

// startServe runs otad serve on 127.0.0.1:0 over dataDir and waits until it
// listens. The server is stopped (as by SIGTERM) at the end of the test at
// the latest.
func startServe(t *testing.T, dataDir string, env map[string]string, args ...string) *runningServer {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	s := &runningServer{t: t, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--addr-file", addrFile, "--data-dir", dataDir, "--log-format", "json"}, args...)
	go func() {
		s.done <- run(ctx, args, strings.NewReader(""), io.Discard, s.stderr, testEnv(env))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(40 * time.Second):
			t.Errorf("otad serve did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil {
			s.url = "http://" + strings.TrimSpace(string(b))
			return s
		}
		select {
		case code := <-s.done:
			t.Fatalf("otad serve exited with %d before listening; stderr:\n%s", code, s.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("otad serve did not write its address file; stderr:\n%s", s.stderr.String())
		}
	}
}

// stop ends the server as SIGTERM does and returns its exit code.
func (s *runningServer) stop() int {
	s.t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup
		return code
	case <-time.After(40 * time.Second):
		s.t.Fatalf("otad serve did not stop; stderr:\n%s", s.stderr.String())
		return -1
	}
}

// get fetches path and returns the status and body.
func (s *runningServer) get(path string) (int, string) {
	s.t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// printedPassword extracts the password of the first-start box.
var printedPassword = regexp.MustCompile(`password: (\S+)`)

// openTestStore opens a stopped otad's database for inspection.
func openTestStore(t *testing.T, dataDir string) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(dataDir, "otad.db"), bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func userNames(t *testing.T, st store.Store) []string {
	t.Helper()
	users, err := st.ListUsers(context.Background())
	if err != nil {
		t.Fatalf("list users: %v", err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	return names
}

func TestServeFirstStartRestartAndShutdown(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServe(t, dataDir, nil)

	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := s.get(path); code != http.StatusOK {
			t.Errorf("GET %s = %d %s, want 200", path, code, body)
		}
	}
	code, body := s.get("/version")
	var v ota.VersionInfo
	if code != http.StatusOK || json.Unmarshal([]byte(body), &v) != nil || v.Version == "" {
		t.Errorf("GET /version = %d %s, want 200 with a version", code, body)
	}

	if code := s.stop(); code != exitOK {
		t.Fatalf("serve exit code = %d, want 0; stderr:\n%s", code, s.stderr.String())
	}
	stderr := s.stderr.String()
	m := printedPassword.FindAllStringSubmatch(stderr, -1)
	if len(m) != 1 {
		t.Fatalf("first start printed %d passwords, want 1; stderr:\n%s", len(m), stderr)
	}
	pw := m[0][1]
	if n := strings.Count(stderr, pw); n != 1 {
		t.Errorf("the password appears %d times on stderr, want once (in the box, never in a log line)", n)
	}
	for _, want := range []string{`"msg":"otad listening"`, `"msg":"release state loaded"`, `"msg":"shutting down"`, `"msg":"stopped"`, "otad user passwd admin"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	// The data directory is private, and the key file is the owner's only.
	for path, want := range map[string]os.FileMode{dataDir: 0o700, filepath.Join(dataDir, "jwt.key"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("stat %s: %v", path, err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %o, want %o", path, got, want)
		}
	}

	// A restart finds the user and the key and prints no password.
	keyBefore, err := os.ReadFile(filepath.Join(dataDir, "jwt.key"))
	if err != nil {
		t.Fatal(err)
	}
	s2 := startServe(t, dataDir, nil)
	if code, body := s2.get("/healthz"); code != http.StatusOK {
		t.Errorf("after restart GET /healthz = %d %s", code, body)
	}
	if code := s2.stop(); code != exitOK {
		t.Fatalf("second serve exit code = %d; stderr:\n%s", code, s2.stderr.String())
	}
	if strings.Contains(s2.stderr.String(), "password:") || strings.Contains(s2.stderr.String(), pw) {
		t.Errorf("a restart printed a password again:\n%s", s2.stderr.String())
	}
	// It says plainly who can log in and how to reset a password.
	for _, want := range []string{
		"otad: users of " + dataDir + ": admin (passwords are not shown again).\n",
		"otad: forgot one? stop otad and run: otad user passwd admin --data-dir " + dataDir + "\n",
	} {
		if !strings.Contains(s2.stderr.String(), want) {
			t.Errorf("a restart did not say %q:\n%s", want, s2.stderr.String())
		}
	}
	keyAfter, err := os.ReadFile(filepath.Join(dataDir, "jwt.key"))
	if err != nil || !bytes.Equal(keyBefore, keyAfter) {
		t.Errorf("the signing key changed across a restart (err %v)", err)
	}

	st := openTestStore(t, dataDir)
	u, err := st.GetUser(context.Background(), "admin")
	if err != nil {
		t.Fatalf("get admin: %v", err)
	}
	if err := bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(pw)); err != nil {
		t.Errorf("the printed password does not match admin's hash: %v", err)
	}
}

func TestServeShutdownDoesNotWaitForIdleConnections(t *testing.T) {
	// Shutdown waits for requests in flight, but an idle keep-alive
	// connection must not hold it for the whole grace period.
	dataDir := t.TempDir()
	s := startServe(t, dataDir, nil)
	req, err := http.NewRequest(http.MethodGet, s.url+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	if code := s.stop(); code != exitOK {
		t.Fatalf("exit code %d", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown with only idle connections took %s", d)
	}
	if _, err := http.Get(s.url + "/healthz"); err == nil {
		t.Errorf("the server still answers after shutdown")
	}
}

func TestSecondInstanceFailsFast(t *testing.T) {
	dataDir := t.TempDir()
	startServe(t, dataDir, nil)

	tests := []struct {
		name string
		args []string
	}{
		{"serve", []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}},
		{"user list", []string{"user", "list", "--data-dir", dataDir}},
		{"user rm", []string{"user", "rm", "admin", "--data-dir", dataDir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := otad(t, nil, "", tt.args...)
			if r.code != exitError {
				t.Errorf("exit code = %d, want %d", r.code, exitError)
			}
			if want := "data dir " + dataDir + " is in use by another otad (stop that otad first"; !strings.Contains(r.stderr, want) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s, want about the 1s lock timeout", d)
			}
		})
	}
}

func TestServeAdminFromEnvironment(t *testing.T) {
	env := map[string]string{envAdminUser: "ci", envAdminPassword: testPassword}

	t.Run("empty store", func(t *testing.T) {
		dataDir := t.TempDir()
		s := startServe(t, dataDir, env)
		s.stop()
		stderr := s.stderr.String()
		if strings.Contains(stderr, testPassword) {
			t.Errorf("the password from the environment reached stderr:\n%s", stderr)
		}
		if strings.Contains(stderr, "password:") {
			t.Errorf("a random admin password was printed although OTAD_ADMIN_* were set:\n%s", stderr)
		}
		st := openTestStore(t, dataDir)
		if got := userNames(t, st); len(got) != 1 || got[0] != "ci" {
			t.Fatalf("users = %q, want [ci]", got)
		}
		u, _ := st.GetUser(context.Background(), "ci")
		if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(testPassword)) != nil {
			t.Errorf("ci's hash does not match OTAD_ADMIN_PASSWORD")
		}
		if cost, _ := bcrypt.Cost(u.PasswordHash); cost != 4 {
			t.Errorf("bcrypt cost = %d, want OTAD_BCRYPT_COST 4", cost)
		}
	})

	t.Run("store with users", func(t *testing.T) {
		dataDir := t.TempDir()
		first := startServe(t, dataDir, nil) // creates admin
		first.stop()
		s := startServe(t, dataDir, env)
		s.stop()
		st := openTestStore(t, dataDir)
		if got := strings.Join(userNames(t, st), ","); got != "admin,ci" {
			t.Errorf("users = %s, want admin,ci", got)
		}
	})

	t.Run("existing user keeps its password", func(t *testing.T) {
		dataDir := t.TempDir()
		startServe(t, dataDir, env).stop()
		other := map[string]string{envAdminUser: "ci", envAdminPassword: "different secret 42"}
		s := startServe(t, dataDir, other)
		s.stop()
		if !strings.Contains(s.stderr.String(), "exists with another password") {
			t.Errorf("no warning about the differing password:\n%s", s.stderr.String())
		}
		// Not only in the log: plainly on stderr, with the fix.
		for _, want := range []string{
			"otad: WARNING: OTAD_ADMIN_PASSWORD is not the password of user ci, which exists already in " + dataDir,
			"otad user passwd ci --data-dir " + dataDir,
		} {
			if !strings.Contains(s.stderr.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, s.stderr.String())
			}
		}
		if strings.Contains(s.stderr.String(), "different secret 42") {
			t.Errorf("the password reached the log:\n%s", s.stderr.String())
		}
		st := openTestStore(t, dataDir)
		u, err := st.GetUser(context.Background(), "ci")
		if err != nil {
			t.Fatal(err)
		}
		if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(testPassword)) != nil {
			t.Errorf("the stored password was changed by OTAD_ADMIN_PASSWORD")
		}
	})

	bad := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"only user", map[string]string{envAdminUser: "ci"}, "set both OTAD_ADMIN_USER and OTAD_ADMIN_PASSWORD"},
		{"only password", map[string]string{envAdminPassword: testPassword}, "set both"},
		{"short password", map[string]string{envAdminUser: "ci", envAdminPassword: "short"}, "OTAD_ADMIN_PASSWORD: password is too short"},
		{"bad name", map[string]string{envAdminUser: "c i", envAdminPassword: testPassword}, "OTAD_ADMIN_USER: user name"},
		{"bad cost", map[string]string{envBcryptCost: "99"}, "OTAD_BCRYPT_COST"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			r := otad(t, tt.env, "", "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir)
			if r.code != exitError || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, tt.wantErr)
			}
			if strings.Contains(r.stderr, testPassword) {
				t.Errorf("stderr shows the password: %q", r.stderr)
			}
		})
	}
}

func TestUserCommands(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	dd := []string{"--data-dir", dataDir}
	step := func(stdin string, wantCode int, wantOut string, args ...string) result {
		t.Helper()
		r := otad(t, nil, stdin, append(args, dd...)...)
		if r.code != wantCode {
			t.Fatalf("otad %s: exit %d, want %d; stdout %q stderr %q", strings.Join(args, " "), r.code, wantCode, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout+r.stderr, wantOut) {
			t.Fatalf("otad %s: output %q %q lacks %q", strings.Join(args, " "), r.stdout, r.stderr, wantOut)
		}
		return r
	}

	step("", exitError, "no otad database in "+dataDir, "user", "list")
	step(testPassword+"\n", exitOK, "Created user alice.", "user", "add", "alice", "--password-stdin")
	step(testPassword+"\r\n", exitOK, "Created user bob.", "user", "add", "bob", "--password-stdin")
	step(testPassword, exitError, "user bob already exists", "user", "add", "bob", "--password-stdin")
	r := step("", exitOK, "NAME", "user", "list")
	if !regexp.MustCompile(`(?m)^alice\s+\d{4}-`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^bob\s`).MatchString(r.stdout) {
		t.Errorf("user list = %q, want alice and bob", r.stdout)
	}

	// passwd changes the hash and bumps the token generation.
	st := openTestStore(t, dataDir)
	before, err := st.GetUser(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	step("new password 123\n", exitOK, "Changed the password of alice", "user", "passwd", "alice", "--password-stdin")
	st = openTestStore(t, dataDir)
	after, err := st.GetUser(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if bcrypt.CompareHashAndPassword(after.PasswordHash, []byte("new password 123")) != nil {
		t.Errorf("the new password does not match the stored hash")
	}
	if after.TokenGeneration <= before.TokenGeneration {
		t.Errorf("token generation %d → %d, want it to grow", before.TokenGeneration, after.TokenGeneration)
	}
	// The CRLF line ending was not part of bob's password.
	st = openTestStore(t, dataDir)
	bob, err := st.GetUser(context.Background(), "bob")
	if err != nil || bcrypt.CompareHashAndPassword(bob.PasswordHash, []byte(testPassword)) != nil {
		t.Errorf("bob's password is not the line without CR LF (err %v)", err)
	}
	st.Close()

	step("", exitOK, "Deleted user bob.", "user", "rm", "bob")
	r = step("", exitOK, "alice", "user", "list")
	if strings.Contains(r.stdout, "bob") {
		t.Errorf("bob is still listed: %q", r.stdout)
	}
	step("", exitError, "no user named bob", "user", "rm", "bob")
	step(testPassword+"\n", exitError, "no user named carol", "user", "passwd", "carol", "--password-stdin")
	step("short\n", exitError, "password is too short", "user", "add", "carol", "--password-stdin")
	step(strings.Repeat("x", 73)+"\n", exitError, "password is too long", "user", "add", "carol", "--password-stdin")
	step("", exitError, "no password on standard input", "user", "add", "carol", "--password-stdin")
	step(testPassword+"\n", exitUsage, "standard input is not a terminal: pass --password-stdin", "user", "add", "carol")
	step(testPassword+"\n", exitUsage, "user name", "user", "add", "bad/name", "--password-stdin")
	step("", exitUsage, "accepts 1 arg(s), received 0", "user", "rm")
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args    []string
		env     map[string]string
		wantErr string
	}{
		{[]string{"serve", "--no-such-flag"}, nil, "unknown flag: --no-such-flag"},
		{[]string{"serve", "extra"}, nil, "accepts 0 arg(s)"},
		{[]string{"serve", "--max-upload-size", "lots"}, nil, "max-upload-size"},
		{[]string{"serve"}, map[string]string{"OTAD_LOG_LEVEL": "chatty"}, "log-level"},
		{[]string{"version", "x"}, nil, "accepts 0 arg(s)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := otad(t, tt.env, "", tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, exitUsage, tt.wantErr)
			}
		})
	}
}

func TestServeListenError(t *testing.T) {
	s := startServe(t, t.TempDir(), nil)
	addr := strings.TrimPrefix(s.url, "http://")
	r := otad(t, nil, "", "serve", "--addr", addr, "--data-dir", t.TempDir())
	if r.code != exitError || !strings.Contains(r.stderr, "listen on "+addr) {
		t.Errorf("exit %d, stderr %q; want a listen error", r.code, r.stderr)
	}
}

func TestVersion(t *testing.T) {
	r := otad(t, nil, "", "version")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "otad ") {
		t.Errorf("otad version: exit %d, stdout %q", r.code, r.stdout)
	}
	r = otad(t, nil, "", "--version")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "otad ") {
		t.Errorf("otad --version: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestMissingCommandShowsHelp(t *testing.T) {
	r := otad(t, nil, "")
	if r.code != exitOK || !strings.Contains(r.stdout, "serve") || !strings.Contains(r.stdout, "user") {
		t.Errorf("otad: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "addr")
	if err := writeFileAtomic(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "two" {
		t.Errorf("content = %q, %v; want two", b, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file (no temp files left)", len(entries))
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing", "addr"), nil, 0o644); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("write into a missing directory: err = %v, want not-exist", err)
	}
}

func TestHealthcheck(t *testing.T) {
	s := startServe(t, t.TempDir(), nil)
	addr := strings.TrimPrefix(s.url, "http://")
	if r := otad(t, nil, "", "healthcheck", "--url", s.url+"/readyz"); r.code != exitOK {
		t.Errorf("healthcheck of a running otad: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := otad(t, map[string]string{"OTAD_ADDR": addr}, "", "healthcheck"); r.code != exitOK {
		t.Errorf("healthcheck via OTAD_ADDR: exit %d, stderr %q", r.code, r.stderr)
	}
	s.stop()
	r := otad(t, nil, "", "healthcheck", "--addr", addr, "--timeout", "1s")
	if r.code != exitError || !strings.Contains(r.stderr, "probe http://"+addr+"/readyz") {
		t.Errorf("healthcheck of a stopped otad: exit %d, stderr %q; want 1 and the probed URL", r.code, r.stderr)
	}
	if r := otad(t, nil, "", "healthcheck", "--url", "ftp://x"); r.code != exitUsage {
		t.Errorf("healthcheck --url ftp://x: exit %d, want %d", r.code, exitUsage)
	}
}

func TestReadyzURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080/readyz",
		":8080":          "http://127.0.0.1:8080/readyz",
		"0.0.0.0:9":      "http://127.0.0.1:9/readyz",
		"[::]:9":         "http://127.0.0.1:9/readyz",
		"otad.lan:80":    "http://otad.lan:80/readyz",
	} {
		if got := readyzURL(addr); got != want {
			t.Errorf("readyzURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestShutdownLetsAnUploadInFlightFinish(t *testing.T) {
	env := map[string]string{envAdminUser: "ci", envAdminPassword: testPassword}
	s := startServe(t, t.TempDir(), env)

	// Log in as the user from the environment.
	login, err := json.Marshal(ota.LoginRequest{Username: "ci", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(s.url+"/api/auth/login", "application/json", bytes.NewReader(login))
	if err != nil {
		t.Fatal(err)
	}
	var tok ota.LoginResponse
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || tok.Token == "" {
		t.Fatalf("login: status %d, err %v", resp.StatusCode, err)
	}

	// Start an upload whose body arrives in two halves, with the shutdown
	// starting in between.
	var zipBuf bytes.Buffer
	zw := zip.NewWriter(&zipBuf)
	f, err := zw.Create("index.html")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "<html>1.0.0</html>")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	secondHalf := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(secondHalf) }) }
	t.Cleanup(release) // never leave the writer blocked
	go func() {
		mw.WriteField("version", "1.0.0")
		fw, err := mw.CreateFormFile("file", "bundle.zip")
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		half := zipBuf.Len() / 2
		fw.Write(zipBuf.Bytes()[:half])
		<-secondHalf
		fw.Write(zipBuf.Bytes()[half:])
		pw.CloseWithError(mw.Close())
	}()
	req, err := http.NewRequest(http.MethodPost, s.url+"/api/v1/apps/com.example.app/bundles", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("upload: %v", err)
			answered <- nil
			return
		}
		answered <- resp
	}()

	// Let the request reach the handler, then shut down.
	time.Sleep(200 * time.Millisecond)
	s.cancel()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.stderr.String(), `"msg":"shutting down"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no shutdown in the log:\n%s", s.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup
		t.Fatalf("otad exited (%d) with an upload in flight", code)
	default:
	}
	release()

	resp = <-answered
	if resp == nil {
		t.FailNow()
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("upload during shutdown: status %d %s, want 201", resp.StatusCode, body)
	}
	if code := s.stop(); code != exitOK {
		t.Errorf("exit code %d", code)
	}
}
