package config

import (
	"path/filepath"
	"testing"
)

// TestSignKeyPath: a relative sign_key is relative to the settings file
// that sets it (or, from OTACTL_SIGN_KEY, to the working directory), so
// the same otactl.yaml works from any folder of the project.
func TestSignKeyPath(t *testing.T) {
	tests := []struct {
		name          string
		user, project string
		env           string
		want          func(l *layout) string
	}{
		{"none", "", "", "", func(*layout) string { return "" }},
		{"project file", "", "sign_key: keys/signing.pem\n", "",
			func(l *layout) string { return filepath.Join(l.project, "keys", "signing.pem") }},
		{"user file", "sign_key: signing.pem\n", "", "",
			func(l *layout) string { return filepath.Join(l.home, "otactl", "signing.pem") }},
		{"project beats user", "sign_key: user.pem\n", "sign_key: project.pem\n", "",
			func(l *layout) string { return filepath.Join(l.project, "project.pem") }},
		{"user file kept when the project file sets other keys", "sign_key: user.pem\n", "server: http://x\n", "",
			func(l *layout) string { return filepath.Join(l.home, "otactl", "user.pem") }},
		{"env beats files, relative to the working directory", "", "sign_key: project.pem\n", "ci.pem",
			func(l *layout) string { return filepath.Join(l.sub, "ci.pem") }},
		{"absolute", "", "sign_key: /secrets/key.pem\n", "", func(*layout) string { return "/secrets/key.pem" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLayout(t, tt.user, tt.project)
			if tt.env != "" {
				l.env["OTACTL_SIGN_KEY"] = tt.env
			}
			cfg, err := l.load(nil, "")
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(l); cfg.SignKey != want {
				t.Errorf("sign key = %q, want %q", cfg.SignKey, want)
			}
		})
	}
}
