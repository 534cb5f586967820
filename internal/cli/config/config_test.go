package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// layout is a user config dir and a Capacitor project with a subfolder,
// each with optional files.
type layout struct {
	home, project, sub string
	env                map[string]string
}

func newLayout(t *testing.T, userYAML, projectYAML string) *layout {
	t.Helper()
	l := &layout{home: t.TempDir(), project: t.TempDir()}
	l.sub = filepath.Join(l.project, "src", "app")
	mustWrite(t, filepath.Join(l.project, "capacitor.config.ts"), "export default {}")
	if err := os.MkdirAll(l.sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if userYAML != "" {
		mustWrite(t, filepath.Join(l.home, "otactl", "config.yaml"), userYAML)
	}
	if projectYAML != "" {
		mustWrite(t, filepath.Join(l.project, ProjectFile), projectYAML)
	}
	l.env = map[string]string{"XDG_CONFIG_HOME": l.home}
	return l
}

func (l *layout) load(flags map[string]string, configFile string) (*Config, error) {
	return Load(LoadOptions{
		Getenv: func(k string) string { return l.env[k] }, WorkDir: l.sub, ConfigFile: configFile, Flags: flags,
	})
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPrecedence(t *testing.T) {
	const user = "server: http://user\napp_id: user.app\noutput: json\n"
	const project = "server: http://project\napp_id: project.app\n"
	tests := []struct {
		name                            string
		user, project                   string
		env, flags                      map[string]string
		wantServer, wantApp, wantOutput string
	}{
		{"defaults", "", "", nil, nil, "", "", OutputTable},
		{"user file", user, "", nil, nil, "http://user", "user.app", OutputJSON},
		{"project file beats user file", user, project, nil, nil, "http://project", "project.app", OutputJSON},
		{"env beats files", user, project, map[string]string{"OTACTL_SERVER": "http://env/", "OTACTL_OUTPUT": "table"}, nil,
			"http://env", "project.app", OutputTable},
		{"flags beat env", user, project, map[string]string{"OTACTL_SERVER": "http://env", "OTACTL_APP_ID": "env.app"},
			map[string]string{KeyServer: "http://flag", KeyAppID: "flag.app"}, "http://flag", "flag.app", OutputJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLayout(t, tt.user, tt.project)
			for k, v := range tt.env {
				l.env[k] = v
			}
			cfg, err := l.load(tt.flags, "")
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Server != tt.wantServer || cfg.AppID != tt.wantApp || cfg.Output != tt.wantOutput {
				t.Errorf("got server %q app %q output %q, want %q %q %q",
					cfg.Server, cfg.AppID, cfg.Output, tt.wantServer, tt.wantApp, tt.wantOutput)
			}
		})
	}
}

func TestConfigFileFlag(t *testing.T) {
	l := newLayout(t, "server: http://user\n", "")
	other := filepath.Join(t.TempDir(), "ci.yaml")
	mustWrite(t, other, "server: http://ci\n")
	cfg, err := l.load(nil, other)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "http://ci" {
		t.Errorf("--config file ignored: server %q", cfg.Server)
	}
	if _, err := l.load(nil, filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing --config file was accepted")
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, user string
		env        map[string]string
		want       string
	}{
		{"bad yaml", "server: [unclosed\n", nil, "not valid YAML"},
		{"bad output", "", map[string]string{"OTACTL_OUTPUT": "yaml"}, `"yaml" is not one of table, json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLayout(t, tt.user, "")
			for k, v := range tt.env {
				l.env[k] = v
			}
			_, err := l.load(nil, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	l := newLayout(t, "", "")
	dir := filepath.Join(l.home, "otactl")
	creds := &Credentials{Current: "http://a", Tokens: map[string]Token{
		"http://a": {Token: "token-a", Username: "admin", ExpiresAt: time.Now().Add(time.Hour)},
		"http://b": {Token: "token-b"},
	}}
	if err := SaveCredentials(dir, creds); err != nil {
		t.Fatal(err)
	}

	// No server configured: the last login's server and its token.
	cfg, err := l.load(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "http://a" || cfg.Token != "token-a" || cfg.TokenFromEnv {
		t.Errorf("got %q %q (env %v), want http://a token-a", cfg.Server, cfg.Token, cfg.TokenFromEnv)
	}
	// Another server: its own token.
	if cfg, _ = l.load(map[string]string{KeyServer: "http://b"}, ""); cfg.Token != "token-b" {
		t.Errorf("token for b = %q", cfg.Token)
	}
	// An unknown server: none.
	if cfg, _ = l.load(map[string]string{KeyServer: "http://c"}, ""); cfg.Token != "" {
		t.Errorf("token for c = %q, want none", cfg.Token)
	}
	// OTACTL_TOKEN beats the stored one.
	l.env["OTACTL_TOKEN"] = "from-env"
	if cfg, _ = l.load(nil, ""); cfg.Token != "from-env" || !cfg.TokenFromEnv {
		t.Errorf("token = %q, want OTACTL_TOKEN's", cfg.Token)
	}
}

func TestSaveCredentialsModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "otactl")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := SaveCredentials(dir, &Credentials{Tokens: map[string]Token{"http://x": {Token: "t"}}}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, credentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(dir)
	if di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700 (an existing 0755 dir must be tightened)", di.Mode().Perm())
	}
	got, err := LoadCredentials(dir)
	if err != nil || got.Tokens["http://x"].Token != "t" {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only %s", len(entries), credentialsFile)
	}
}

func TestLoadCredentialsDamaged(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, credentialsFile), "{not json")
	_, err := LoadCredentials(dir)
	if err == nil || !strings.Contains(err.Error(), "otactl login") {
		t.Fatalf("err = %v, want one telling to log in again", err)
	}
}

func TestUserDir(t *testing.T) {
	env := map[string]string{"XDG_CONFIG_HOME": "/xdg", "HOME": "/home/u"}
	get := func(k string) string { return env[k] }
	if d, _ := UserDir(get); d != filepath.Join("/xdg", "otactl") {
		t.Errorf("with XDG_CONFIG_HOME: %q", d)
	}
	env["XDG_CONFIG_HOME"] = "relative" // ignored, as the XDG spec says
	if d, _ := UserDir(get); d != filepath.Join("/home/u", ".config", "otactl") {
		t.Errorf("with a relative XDG_CONFIG_HOME: %q", d)
	}
}

func TestFindProjectDir(t *testing.T) {
	l := newLayout(t, "", "")
	if got := FindProjectDir(l.sub); got != l.project {
		t.Errorf("FindProjectDir(sub) = %q, want %q", got, l.project)
	}
	if got := FindProjectDir(t.TempDir()); got != "" {
		t.Errorf("FindProjectDir(outside) = %q, want none", got)
	}
}

func TestDeltaSetting(t *testing.T) {
	for _, tt := range []struct {
		name, project string
		env           map[string]string
		want          bool
		wantErr       bool
	}{
		{"default off", "", nil, false, false},
		{"project file", "delta: true\n", nil, true, false},
		{"env beats the file", "delta: true\n", map[string]string{"OTACTL_DELTA": "false"}, false, false},
		{"env 1", "", map[string]string{"OTACTL_DELTA": "1"}, true, false},
		{"not a boolean", "", map[string]string{"OTACTL_DELTA": "maybe"}, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLayout(t, "", tt.project)
			for k, v := range tt.env {
				l.env[k] = v
			}
			cfg, err := l.load(nil, "")
			if tt.wantErr {
				if err == nil {
					t.Fatalf("OTACTL_DELTA=maybe accepted: %+v", cfg)
				}
				return
			}
			if err != nil || cfg.Delta != tt.want {
				t.Errorf("delta = %v (%v); want %v", cfg != nil && cfg.Delta, err, tt.want)
			}
		})
	}
}
