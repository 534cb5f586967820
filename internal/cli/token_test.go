package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

func TestTokenCommands(t *testing.T) {
	e := newTestEnv(t)

	// -o json prints the secret under "token", with the token's scope.
	r := e.mustRun("token", "create", "--name", "ci", "--expires", "90d", "--app-id", testAppID, "--channel", "beta", "-o", "json")
	var created struct {
		Token     string    `json:"token"`
		ID        string    `json:"id"`
		AppID     string    `json:"app_id"`
		Channel   string    `json:"channel"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil {
		t.Fatalf("token create -o json printed %q: %v", r.stdout, err)
	}
	if !strings.HasPrefix(created.Token, ota.CITokenPrefix+created.ID+"_") || created.AppID != testAppID || created.Channel != "beta" {
		t.Errorf("created = %+v", created)
	}
	if d := time.Until(created.ExpiresAt); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Errorf("expires in %s, want 90 days", d)
	}

	// Without -o json only the token goes to stdout, so $(...) captures it.
	plain := e.mustRun("token", "create", "--name", "nightly", "--expires", "2w")
	if tok := strings.TrimSpace(plain.stdout); !strings.HasPrefix(tok, ota.CITokenPrefix) || strings.Contains(tok, "\n") {
		t.Errorf("token create stdout = %q, want the token alone", plain.stdout)
	}
	if !strings.Contains(plain.err, "not shown again") {
		t.Errorf("stderr %q does not warn that the token is shown once", plain.err)
	}

	// The CI token deploys to its channel through OTACTL_TOKEN...
	login := e.env["OTACTL_TOKEN"]
	e.env["OTACTL_TOKEN"] = created.Token
	e.mustRun("deploy", "web", "1.0.0", "--channel", "beta")
	// ...but not elsewhere, nor manage tokens.
	if r := e.run("", "deploy", "web", "1.0.1", "--channel", "production"); r.code != ExitAuth || !strings.Contains(r.err, "limited to channel beta") {
		t.Errorf("deploy to production with a beta token: exit %d, stderr %q", r.code, r.err)
	}
	if r := e.run("", "token", "list"); r.code != ExitAuth {
		t.Errorf("token list with a CI token: exit %d, want %d", r.code, ExitAuth)
	}
	e.env["OTACTL_TOKEN"] = login

	list := e.mustRun("token", "list")
	for _, want := range []string{created.ID, "ci", "beta", "nightly", "active"} {
		if !strings.Contains(list.stdout, want) {
			t.Errorf("token list lacks %q:\n%s", want, list.stdout)
		}
	}
	rev := e.mustRun("token", "revoke", created.ID)
	if !strings.Contains(rev.stdout, "revoked") {
		t.Errorf("revoke printed %q", rev.stdout)
	}
	if list := e.mustRun("token", "list"); !strings.Contains(list.stdout, "revoked") {
		t.Errorf("token list after revoke:\n%s", list.stdout)
	}
	e.env["OTACTL_TOKEN"] = created.Token
	if r := e.run("", "channels", "--app-id", testAppID); r.code != ExitAuth {
		t.Errorf("revoked token: exit %d, want %d; stderr %q", r.code, ExitAuth, r.err)
	}
	e.env["OTACTL_TOKEN"] = login

	for _, args := range [][]string{
		{"token", "create"},
		{"token", "create", "--name", "x", "--expires", "0d"},
		{"token", "create", "--name", "x", "--expires", "soon"},
		{"token", "revoke"},
	} {
		if r := e.run("", args...); r.code != ExitUsage {
			t.Errorf("otactl %s: exit %d, want %d; stderr %q", strings.Join(args, " "), r.code, ExitUsage, r.err)
		}
	}
	if r := e.run("", "token", "revoke", "ffffffffffffffff"); r.code != ExitError {
		t.Errorf("revoke unknown: exit %d, want %d; stderr %q", r.code, ExitError, r.err)
	}
}

func TestParseLifetime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"36h", 36 * time.Hour, true},
		{"0d", 0, false},
		{"-1d", 0, false},
		{"d", 0, false},
		{"1y", 0, false},
		{"500ms", 0, false},
	} {
		got, err := parseLifetime(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseLifetime(%q) = %s, %v; want %s, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
