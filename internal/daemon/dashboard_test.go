package daemon

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestServeDashboard: otad serve answers /ui with the dashboard, whose
// login takes otad's users, and --dashboard=false turns it off.
func TestServeDashboard(t *testing.T) {
	env := map[string]string{envAdminUser: "admin", envAdminPassword: testPassword}
	s := startServe(t, t.TempDir(), env)
	// The landing page names the dashboard, so whoever opens otad's URL
	// finds it.
	if code, body := s.get("/"); code != http.StatusOK || !strings.Contains(body, `"dashboard":"`+s.url+`/ui/"`) {
		t.Errorf("GET / = %d %s; want the dashboard's URL in it", code, body)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(s.url + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/ui/login" || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET /ui/ ended at %s with %d", resp.Request.URL, resp.StatusCode)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no login form:\n%s", body)
	}
	resp, err = c.PostForm(s.url+"/ui/login", url.Values{"csrf": {string(m[1])}, "username": {"admin"}, "password": {testPassword}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "No apps yet") {
		t.Fatalf("after logging in: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	s.stop()
	if !strings.Contains(s.stderr.String(), `"msg":"dashboard login"`) {
		t.Errorf("the login is not in the log:\n%s", s.stderr.String())
	}

	off := startServe(t, t.TempDir(), env, "--dashboard=false")
	if code, _ := off.get("/ui/"); code != http.StatusNotFound {
		t.Errorf("with --dashboard=false, /ui/ answers %d", code)
	}
	if _, body := off.get("/"); strings.Contains(body, "dashboard") {
		t.Errorf("with --dashboard=false, GET / names a dashboard: %s", body)
	}
}
