package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// oldBundle is a web bundle as the old worker stored it.
func oldBundle(t *testing.T, dir, name, marker string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	// A slice, not a map: the entry order must be the same on every call so
	// the same marker gives the same bytes.
	for _, f := range [][2]string{{"index.html", "<html>" + marker + "</html>"}, {"assets/app.js", "// " + marker}} {
		file, body := f[0], f[1]
		w, err := zw.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:])
}

func (e *testEnv) client() *ota.Client {
	e.t.Helper()
	c, err := ota.NewClient(e.srv.URL, ota.WithToken(e.srv.Token))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func importItems(t *testing.T, out string) []importItem {
	t.Helper()
	var items []importItem
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		t.Fatalf("import -o json printed %q: %v", out, err)
	}
	return items
}

func TestImportCSV(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	s100 := oldBundle(t, dir, "stable-1.0.0.zip", "1.0.0")
	s110 := oldBundle(t, dir, "stable-1.1.0.zip", "1.1.0")
	b120 := oldBundle(t, dir, "beta-1.2.0-rc.1.zip", "1.2.0-rc.1")
	// The same bytes re-uploaded to production: the old way to promote.
	p110 := oldBundle(t, dir, "production-1.1.0.zip", "1.1.0")
	if p110 != s110 {
		t.Fatal("test bundles are not reproducible")
	}
	writeFile(t, filepath.Join(dir, "README.txt"), "not a bundle")
	// The old worker's datetime("now") format; stable-1.0.0 was uploaded
	// twice (a duplicate row with other bytes, then the file's).
	writeFile(t, filepath.Join(dir, "history.csv"), "id,channel,version,filename,uploaded_at,checksum\n"+
		"1,stable,1.0.0,stable-1.0.0.zip,2024-01-01 09:00:00,"+strings.Repeat("a", 64)+"\n"+
		"2,stable,1.0.0,stable-1.0.0.zip,2024-01-02 10:00:00,"+s100+"\n"+
		"3,beta,1.2.0-rc.1,beta-1.2.0-rc.1.zip,2024-03-01 08:30:00,"+strings.ToUpper(b120)+"\n"+
		"4,stable,1.1.0,stable-1.1.0.zip,2024-02-01 12:00:00,"+s110+"\n"+
		"5,production,1.1.0,production-1.1.0.zip,2024-02-03 12:00:00,"+p110+"\n")
	app := []string{"--app-id", "com.old.worker"}

	// A dry run plans, oldest first, and uploads nothing.
	r := e.mustRun(append([]string{"import", dir, "--dry-run", "-o", "json"}, app...)...)
	items := importItems(t, r.stdout)
	var order []string
	for _, it := range items {
		order = append(order, it.File+":"+it.Action)
	}
	want := "stable-1.0.0.zip:upload stable-1.1.0.zip:upload production-1.1.0.zip:upload beta-1.2.0-rc.1.zip:upload"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("plan = %s\nwant  %s", got, want)
	}
	if !strings.Contains(r.err, "README.txt") {
		t.Errorf("stderr %q does not mention the skipped README.txt", r.err)
	}
	ctx := context.Background()
	if _, err := e.client().Channels(ctx, "com.old.worker"); !isStatus(err, 404) {
		t.Fatalf("after a dry run the app exists (err %v)", err)
	}

	e.mustRun(append([]string{"import", dir}, app...)...)
	chans, err := e.client().Channels(ctx, "com.old.worker")
	if err != nil {
		t.Fatal(err)
	}
	active := map[string]string{}
	for _, c := range chans {
		active[c.Name] = c.Active
	}
	if active["stable"] != "1.1.0" || active["production"] != "1.1.0" || active["beta"] != "1.2.0-rc.1" {
		t.Errorf("active versions = %v", active)
	}
	page, err := e.client().History(ctx, "com.old.worker", "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range page.Events {
		got = append(got, ev.Channel+"/"+ev.Version+"@"+ev.Time.UTC().Format(time.DateTime))
	}
	wantHist := "beta/1.2.0-rc.1@2024-03-01 08:30:00 production/1.1.0@2024-02-03 12:00:00 stable/1.1.0@2024-02-01 12:00:00 stable/1.0.0@2024-01-02 10:00:00"
	if strings.Join(got, " ") != wantHist {
		t.Errorf("history = %s\nwant      %s", strings.Join(got, " "), wantHist)
	}

	// Running it again changes nothing.
	items = importItems(t, e.mustRun(append([]string{"import", dir, "-o", "json"}, app...)...).stdout)
	for _, it := range items {
		if it.Action != "skip" {
			t.Errorf("second import: %s is %s, want skip", it.File, it.Action)
		}
	}
	page2, err := e.client().History(ctx, "com.old.worker", "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page2.Events) != len(page.Events) {
		t.Errorf("second import added events: %d, was %d", len(page2.Events), len(page.Events))
	}
}

func isStatus(err error, status int) bool {
	var api *ota.APIError
	return errors.As(err, &api) && api.Status == status
}

func TestImportJSONExport(t *testing.T) {
	e := newTestEnv(t)
	dir := t.TempDir()
	s1 := oldBundle(t, dir, "stable-2.0.0.zip", "2.0.0")
	s2 := oldBundle(t, dir, "stable-2.0.1.zip", "2.0.1")
	// What wrangler d1 execute --json prints; RFC 3339 times. Listed newest
	// first, as SELECT ... ORDER BY uploaded_at DESC gives them.
	export := filepath.Join(t.TempDir(), "export.json")
	writeFile(t, export, `[{"results":[
		{"channel":"stable","version":"2.0.0","filename":"stable-2.0.0.zip","uploaded_at":"2025-06-01T10:00:00Z","checksum":"`+s1+`"},
		{"channel":"stable","version":"2.0.1","filename":"stable-2.0.1.zip","uploaded_at":"2025-05-01T10:00:00Z","checksum":"`+s2+`"}
	],"success":true}]`)
	e.mustRun("import", dir, "--history", export, "--app-id", "com.json.app")
	ch, err := e.client().Channel(context.Background(), "com.json.app", "stable")
	if err != nil {
		t.Fatal(err)
	}
	// 2.0.0 was uploaded last, so it is what the old worker served.
	if ch.Active != "2.0.0" {
		t.Errorf("active = %s, want 2.0.0 (the last upload)", ch.Active)
	}
	bundles, err := e.client().Bundles(context.Background(), "com.json.app")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bundles {
		want := map[string]string{"2.0.0": "2025-06-01T10:00:00Z", "2.0.1": "2025-05-01T10:00:00Z"}[b.Version]
		if got := b.UploadedAt.UTC().Format(time.RFC3339); got != want {
			t.Errorf("bundle %s uploaded_at = %s, want %s", b.Version, got, want)
		}
	}
}

func TestImportRefusesBeforeUploading(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) []string
		wantErr string
	}{
		{"checksum mismatch", func(t *testing.T, dir string) []string {
			oldBundle(t, dir, "stable-1.0.0.zip", "a")
			s := oldBundle(t, dir, "stable-1.0.1.zip", "b")
			writeFile(t, filepath.Join(dir, "history.csv"), "channel,version,filename,uploaded_at,checksum\n"+
				"stable,1.0.0,stable-1.0.0.zip,2024-01-01T00:00:00Z,"+strings.Repeat("0", 64)+"\n"+
				"stable,1.0.1,stable-1.0.1.zip,2024-01-02T00:00:00Z,"+s+"\n")
			return nil
		}, "does not match"},
		{"file missing", func(t *testing.T, dir string) []string {
			oldBundle(t, dir, "stable-1.0.0.zip", "a")
			writeFile(t, filepath.Join(dir, "history.csv"), "channel,version,uploaded_at\nstable,1.0.0,2024-01-01T00:00:00Z\nstable,1.0.2,2024-01-03T00:00:00Z\n")
			return nil
		}, "not in"},
		{"crc32 checksum", func(t *testing.T, dir string) []string {
			oldBundle(t, dir, "stable-1.0.0.zip", "a")
			writeFile(t, filepath.Join(dir, "history.csv"), "channel,version,uploaded_at,checksum\nstable,1.0.0,2024-01-01T00:00:00Z,deadbeef\n")
			return nil
		}, "CRC32"},
		{"bad time", func(t *testing.T, dir string) []string {
			oldBundle(t, dir, "stable-1.0.0.zip", "a")
			writeFile(t, filepath.Join(dir, "history.csv"), "channel,version,uploaded_at\nstable,1.0.0,yesterday\n")
			return nil
		}, "uploaded_at"},
		{"no bundles", func(t *testing.T, dir string) []string { return nil }, "no <channel>-<version>.zip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			r := e.run("", "import", dir, "--app-id", "com.refused.app")
			if r.code == 0 || !strings.Contains(r.err, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", r.code, r.err, tc.wantErr)
			}
			if _, err := e.client().App(context.Background(), "com.refused.app"); !isStatus(err, 404) {
				t.Errorf("something was uploaded (app lookup: %v)", err)
			}
		})
	}

	// A CI token cannot import: upload times need a user.
	ciDir := t.TempDir()
	oldBundle(t, ciDir, "stable-1.0.0.zip", "a")
	tok := strings.TrimSpace(e.mustRun("token", "create", "--name", "ci").stdout)
	login := e.env["OTACTL_TOKEN"]
	e.env["OTACTL_TOKEN"] = tok
	if r := e.run("", "import", ciDir, "--app-id", "com.refused.app"); r.code != ExitAuth || !strings.Contains(r.err, "user login") {
		t.Errorf("import with a CI token: exit %d, stderr %q", r.code, r.err)
	}
	e.env["OTACTL_TOKEN"] = login

	// A version already on otad with other bytes stops the whole import.
	dir := t.TempDir()
	oldBundle(t, dir, "stable-3.0.0.zip", "first")
	e.mustRun("import", dir, "--app-id", "com.conflict.app")
	dir2 := t.TempDir()
	oldBundle(t, dir2, "beta-2.9.0.zip", "new")
	oldBundle(t, dir2, "stable-3.0.0.zip", "other bytes")
	r := e.run("", "import", dir2, "--app-id", "com.conflict.app")
	if r.code == 0 || !strings.Contains(r.err, "other bytes") && !strings.Contains(r.err, "already on otad") {
		t.Errorf("conflicting import: exit %d, stderr %q", r.code, r.err)
	}
	if _, err := e.client().Channel(context.Background(), "com.conflict.app", "beta"); !isStatus(err, 404) {
		t.Errorf("beta-2.9.0 was uploaded before the conflict was found (err %v)", err)
	}
}

func TestParseBundleName(t *testing.T) {
	for _, tc := range []struct {
		name, channel, version, kind string
		ok                           bool
	}{
		{"stable-1.2.0.zip", "stable", "1.2.0", ota.KindWeb, true},
		{"beta-rc-1.2.0-rc.1.zip", "beta-rc", "1.2.0-rc.1", ota.KindWeb, true},
		{"apk-7.zip", "apk", "7", ota.KindAPK, true},
		{"apk-1.0.0.apk", "apk", "1.0.0", ota.KindAPK, true},
		{"stable.zip", "", "", "", false},
		{"-1.0.0.zip", "", "", "", false},
		{"stable-1.0.0.tar", "", "", "", false},
		{"stable-.zip", "", "", "", false},
	} {
		c, v, k, ok := parseBundleName(tc.name)
		if c != tc.channel || v != tc.version || k != tc.kind || ok != tc.ok {
			t.Errorf("parseBundleName(%q) = %q %q %q %v", tc.name, c, v, k, ok)
		}
	}
}
