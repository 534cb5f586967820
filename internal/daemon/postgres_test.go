package daemon

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/store/postgres"
	"github.com/otaship/ota/internal/store/storetest"
	"github.com/otaship/ota/internal/testengine"
	"github.com/otaship/ota/pkg/ota"
)

// dbSecret is the password in the test databases' URLs. The test server
// trusts loopback connections, so any password is accepted; it is there
// to be looked for in logs and messages.
const dbSecret = "Pg-S3cret-xyz"

// testDatabase is a fresh database's URL with dbSecret in it.
func testDatabase(t *testing.T) string {
	t.Helper()
	u := testengine.Postgres(t)
	with := strings.Replace(u, "://postgres@", "://postgres:"+dbSecret+"@", 1)
	if with == u {
		t.Fatalf("cannot put a password into %s", u)
	}
	return with
}

func openTestDatabase(t *testing.T, url string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(t.Context(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestServeOnDatabase: with OTAD_DATABASE_URL otad keeps its records in
// PostgreSQL (no bbolt file in the data dir), they survive a restart, the
// user commands work beside the running server, and no log line shows the
// password.
func TestServeOnDatabase(t *testing.T) {
	url := testDatabase(t)
	dir := t.TempDir()
	env := map[string]string{"OTAD_DATABASE_URL": url, envAdminUser: "admin", envAdminPassword: testPassword}
	s := startServe(t, dir, env)
	c, err := ota.NewClient(s.url)
	if err != nil {
		t.Fatal(err)
	}
	login, err := c.Login(t.Context(), "admin", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	c.Token = login.Token
	bundle := zipOf(t, "1.0.0")
	if _, err := c.Upload(t.Context(), ota.UploadRequest{AppID: "com.example.app", Channel: "production", Version: "1.0.0",
		File: bytes.NewReader(bundle), Size: int64(len(bundle))}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	// Beside the running server: no lock to wait for.
	if r := otad(t, env, testPassword+"\n", "user", "add", "bob", "--password-stdin", "--data-dir", dir); r.code != exitOK {
		t.Fatalf("user add while serving: exit %d: %s", r.code, r.stderr)
	}
	if r := otad(t, env, "", "user", "list", "--data-dir", dir); r.code != exitOK || !strings.Contains(r.stdout, "bob") || !strings.Contains(r.stdout, "admin") {
		t.Errorf("user list: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if code := s.stop(); code != exitOK {
		t.Fatalf("serve exit %d: %s", code, s.stderr)
	}
	logs := s.stderr.String()
	if strings.Contains(logs, dbSecret) {
		t.Errorf("the log shows the database password:\n%s", logs)
	}
	if !strings.Contains(logs, `"database":"postgres://postgres:xxxxx@`) {
		t.Errorf("the log does not say which database (password hidden):\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(dir, "otad.db")); !os.IsNotExist(err) {
		t.Errorf("a bbolt file was made in the data dir: %v", err)
	}

	s = startServe(t, dir, env)
	st := openTestDatabase(t, url)
	ch, err := st.GetChannel(t.Context(), "com.example.app", "production")
	if err != nil || ch.Active != "1.0.0" {
		t.Errorf("after a restart: %+v, %v; want production serving 1.0.0", ch, err)
	}
	if got := deviceDownload(t, s.url, "com.example.app"); !bytes.Equal(got, bundle) {
		t.Errorf("the device got %d bytes; want the uploaded bundle", len(got))
	}
}

// TestServeDatabaseUnreachable: a database that does not answer fails the
// start at once with a message that says where, without the password.
func TestServeDatabaseUnreachable(t *testing.T) {
	for _, args := range [][]string{{"serve", "--addr", "127.0.0.1:0"}, {"user", "list"}} {
		url := "postgres://otad:" + dbSecret + "@127.0.0.1:1/otad?sslmode=disable"
		r := otad(t, map[string]string{"OTAD_DATABASE_URL": url}, "", append(args, "--data-dir", t.TempDir())...)
		if r.code != exitError || !strings.Contains(r.stderr, "cannot connect") || !strings.Contains(r.stderr, "127.0.0.1:1") {
			t.Errorf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		if strings.Contains(r.stderr+r.stdout, dbSecret) {
			t.Errorf("%v shows the password: %s", args, r.stderr)
		}
	}
	r := otad(t, nil, "", "serve", "--database-url", "mysql://otad:"+dbSecret+"@db/otad")
	if r.code != exitUsage || !strings.Contains(r.stderr, "postgres://") || strings.Contains(r.stderr, dbSecret) {
		t.Errorf("a URL of another database: exit %d: %s", r.code, r.stderr)
	}
}

// TestUserListNeedsSchema: reading commands do not create otad's tables
// in a database otad never used.
func TestUserListNeedsSchema(t *testing.T) {
	url := testDatabase(t)
	r := otad(t, map[string]string{"OTAD_DATABASE_URL": url}, "", "user", "list", "--data-dir", t.TempDir())
	if r.code != exitError || !strings.Contains(r.stderr, "no otad schema") {
		t.Errorf("user list on a new database: exit %d: %s", r.code, r.stderr)
	}
}

// TestMigrate moves a seeded data dir into PostgreSQL, runs it again, and
// serves devices from the result with the same data dir.
func TestMigrate(t *testing.T) {
	dir := t.TempDir()
	seedDataDir(t, dir)
	url := testDatabase(t)
	env := map[string]string{"OTAD_DATABASE_URL": url}
	r := otad(t, env, "", "migrate", "--from-data-dir", dir)
	if r.code != exitOK {
		t.Fatalf("migrate: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"Copied", "2 users", "2 apps", "Checked 7 bundle files", "--data-dir " + dir} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("migrate says %q; want %q in it", r.stdout, want)
		}
	}
	if strings.Contains(r.stdout+r.stderr, dbSecret) {
		t.Errorf("migrate shows the password: %s %s", r.stdout, r.stderr)
	}
	src := openTestStore(t, dir)
	want := storetest.ReadAll(t, src)
	src.Close()
	if got := storetest.ReadAll(t, openTestDatabase(t, url)); got != want {
		t.Fatalf("the database differs from the data dir:\n%s\nwant\n%s", got, want)
	}

	// Again: safe, nothing changes.
	if r := otad(t, nil, "", "migrate", "--from-data-dir", dir, "--to-database-url", url); r.code != exitOK ||
		!strings.Contains(r.stdout, "1 of the stats events were in the database already") {
		t.Fatalf("second migrate: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if got := storetest.ReadAll(t, openTestDatabase(t, url)); got != want {
		t.Errorf("a second migrate changed the database")
	}

	// otad on the database and the same data dir serves the bundles.
	s := startServe(t, dir, env)
	if got := deviceDownload(t, s.url, "com.example.app"); string(got) != "com.example.app 1.0.2 web" {
		t.Errorf("the device downloaded %q; want the bundle production serves after the rollback", got)
	}
}

// TestMigrateRefusals: nothing reaches the database when the data dir is
// in use or a bundle file is missing or damaged.
func TestMigrateRefusals(t *testing.T) {
	t.Run("in use", func(t *testing.T) {
		dir := t.TempDir()
		seedDataDir(t, dir)
		startServe(t, dir, nil)
		r := otad(t, nil, "", "migrate", "--from-data-dir", dir, "--to-database-url", testDatabase(t))
		if r.code != exitError || !strings.Contains(r.stderr, "in use by another otad") {
			t.Errorf("migrate of a running data dir: exit %d: %s", r.code, r.stderr)
		}
	})
	for _, damage := range []string{"missing", "damaged"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			seedDataDir(t, dir)
			st := openTestStore(t, dir)
			refs, err := st.ReferencedBlobs(t.Context())
			st.Close()
			if err != nil {
				t.Fatal(err)
			}
			for sha := range refs {
				path := filepath.Join(dir, "blobs", "sha256", sha[:2], sha)
				if damage == "missing" {
					err = os.Remove(path)
				} else {
					err = os.WriteFile(path, []byte("other bytes"), 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
				break
			}
			url := testDatabase(t)
			r := otad(t, nil, "", "migrate", "--from-data-dir", dir, "--to-database-url", url)
			if r.code != exitError || !strings.Contains(r.stderr, damage) {
				t.Errorf("migrate with a %s bundle file: exit %d: %s", damage, r.code, r.stderr)
			}
			c, err := openTestDatabase(t, url).Counts(t.Context())
			if err != nil || c.Apps+c.Users+c.Events != 0 {
				t.Errorf("the refused migrate wrote %+v, %v", c, err)
			}
		})
	}
	r := otad(t, nil, "", "migrate", "--from-data-dir", t.TempDir())
	if r.code != exitUsage || !strings.Contains(r.stderr, "--to-database-url") {
		t.Errorf("migrate without a database: exit %d: %s", r.code, r.stderr)
	}
}

// TestBackupRestoreDatabase: otad backup reads the database (while otad
// could run) and the data dir's bundle files; otad restore puts such a
// backup into an empty database, or into a data dir of its own.
func TestBackupRestoreDatabase(t *testing.T) {
	dir := t.TempDir()
	seedDataDir(t, dir)
	url := testDatabase(t)
	if r := otad(t, nil, "", "migrate", "--from-data-dir", dir, "--to-database-url", url); r.code != exitOK {
		t.Fatalf("migrate: %s", r.stderr)
	}
	if err := os.Remove(filepath.Join(dir, "otad.db")); err != nil {
		t.Fatal(err)
	}
	want := storetest.ReadAll(t, openTestDatabase(t, url))
	env := map[string]string{"OTAD_DATABASE_URL": url}
	file := filepath.Join(t.TempDir(), "otad.tar.gz")
	r := otad(t, env, "", "backup", "--data-dir", dir, file)
	if r.code != exitOK || !strings.Contains(r.stdout, "from the database postgres://postgres:xxxxx@") || !strings.Contains(r.stdout, "7 bundle files") {
		t.Fatalf("backup: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, dbSecret) {
		t.Errorf("backup shows the password: %s", r.stdout)
	}

	// Into another database, the bundle files into a new data dir.
	url2, dir2 := testDatabase(t), filepath.Join(t.TempDir(), "restored")
	r = otad(t, map[string]string{"OTAD_DATABASE_URL": url2}, "", "restore", "--data-dir", dir2, file)
	if r.code != exitOK || !strings.Contains(r.stdout, "into the database") || !strings.Contains(r.stdout, "2 apps") {
		t.Fatalf("restore into a database: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if got := storetest.ReadAll(t, openTestDatabase(t, url2)); got != want {
		t.Errorf("the restored database differs:\n%s\nwant\n%s", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir2, "otad.db")); !os.IsNotExist(err) {
		t.Errorf("the unpacked records stayed in the data dir: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(dir2, "blobs", "sha256"))
	if err != nil || len(entries) == 0 {
		t.Errorf("no bundle files restored: %v", err)
	}

	// A database with records is refused, and nothing is left behind.
	dir3 := filepath.Join(t.TempDir(), "again")
	r = otad(t, map[string]string{"OTAD_DATABASE_URL": url2}, "", "restore", "--data-dir", dir3, file)
	if r.code != exitError || !strings.Contains(r.stderr, "is not empty") {
		t.Errorf("restore into a database with records: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(dir3); !os.IsNotExist(err) {
		t.Errorf("the refused restore made %s: %v", dir3, err)
	}

	// The same backup restores into a data dir of the embedded store.
	dir4 := filepath.Join(t.TempDir(), "bolt")
	if r := otad(t, nil, "", "restore", "--data-dir", dir4, file); r.code != exitOK {
		t.Fatalf("restore into a data dir: exit %d: %s", r.code, r.stderr)
	}
	st, err := bolt.Open(filepath.Join(dir4, "otad.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := storetest.ReadAll(t, st); got != want {
		t.Errorf("the data dir restored from a database backup differs:\n%s\nwant\n%s", got, want)
	}
}

// zipOf is a minimal web bundle.
func zipOf(t *testing.T, version string) []byte {
	t.Helper()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	f, err := zw.Create("index.html")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "<html>"+version+"</html>")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return zb.Bytes()
}

// deviceDownload asks /updates as a device of app on its default channel
// and downloads the bundle it is offered.
func deviceDownload(t *testing.T, base, app string) []byte {
	t.Helper()
	req, _ := json.Marshal(map[string]any{
		"platform": "android", "device_id": "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11", "app_id": app, "custom_id": "",
		"version_build": "0.0.1", "version_code": "1", "version_os": "14", "version_name": "0.0.1",
		"plugin_version": "8.51.14", "is_emulator": false, "is_prod": true, "defaultChannel": "",
	})
	resp, err := http.Post(base+"/updates", "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		URL   string `json:"url"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || ans.URL == "" {
		t.Fatalf("/updates: %d, %+v, %v", resp.StatusCode, ans, err)
	}
	dl, err := http.Get(ans.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Body.Close()
	b, err := io.ReadAll(dl.Body)
	if err != nil || dl.StatusCode != http.StatusOK {
		t.Fatalf("download %s: %d, %v", ans.URL, dl.StatusCode, err)
	}
	return b
}
