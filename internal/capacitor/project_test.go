package capacitor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/capapp"
)

// writeFiles creates files (slash paths → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const pkgJSON = `{"name":"demo-app","version":"1.4.2","scripts":{"build":"vite build","generate":"nuxt generate"}}`

func TestLoadJSON(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string
		from       string // sub folder Load starts in
		wantApp    string
		wantWebDir string
		wantErr    string
		wantIs     error
	}{
		{
			name:       "config with webDir",
			files:      map[string]string{"capacitor.config.json": `{"appId":"com.example.app","webDir":"dist"}`, "package.json": pkgJSON},
			wantApp:    "com.example.app",
			wantWebDir: "dist",
		},
		{
			name:       "webDir defaults to www",
			files:      map[string]string{"capacitor.config.json": `{"appId":"com.example.app"}`, "package.json": pkgJSON},
			wantApp:    "com.example.app",
			wantWebDir: "www",
		},
		{
			name:       "found from a sub folder",
			files:      map[string]string{"capacitor.config.json": `{"appId":"com.example.app","webDir":"out"}`, "src/components/x.vue": ""},
			from:       "src/components",
			wantApp:    "com.example.app",
			wantWebDir: "out",
		},
		{
			name:    "no appId",
			files:   map[string]string{"capacitor.config.json": `{"webDir":"dist"}`},
			wantErr: "has no appId",
		},
		{
			name:    "bad json",
			files:   map[string]string{"capacitor.config.json": `{"appId":`},
			wantErr: "parse",
		},
		{
			name:    "bad package.json",
			files:   map[string]string{"capacitor.config.json": `{"appId":"a.b"}`, "package.json": `{`},
			wantErr: "package.json",
		},
		{
			name:   "no project",
			files:  map[string]string{"package.json": pkgJSON},
			wantIs: ErrNoProject,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			p, err := Load(t.Context(), filepath.Join(dir, filepath.FromSlash(tt.from)))
			if tt.wantErr != "" || tt.wantIs != nil {
				if err == nil {
					t.Fatalf("Load() = %+v; want an error", p)
				}
				if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Load() error = %v; want it to contain %q", err, tt.wantErr)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("Load() error = %v; want errors.Is %v", err, tt.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error: %v", err)
			}
			if p.AppID != tt.wantApp || p.WebDir != tt.wantWebDir {
				t.Errorf("Load() AppID, WebDir = %q, %q; want %q, %q", p.AppID, p.WebDir, tt.wantApp, tt.wantWebDir)
			}
			realDir, _ := filepath.EvalSymlinks(dir)
			gotDir, _ := filepath.EvalSymlinks(p.Dir)
			if gotDir != realDir {
				t.Errorf("Dir = %s; want %s", p.Dir, dir)
			}
			if filepath.Base(p.ConfigFile) != "capacitor.config.json" || !filepath.IsAbs(p.ConfigFile) {
				t.Errorf("ConfigFile = %s", p.ConfigFile)
			}
			if p.Scripts == nil {
				t.Error("Scripts is nil; want an empty map at least")
			}
		})
	}
}

func TestLoadPackageAndBuildScript(t *testing.T) {
	tests := []struct {
		pkg  string
		want string
	}{
		{pkgJSON, "generate"},
		{`{"name":"x","version":"1.0.0","scripts":{"build":"vite build"}}`, "build"},
		{`{"name":"x","version":"1.0.0","scripts":{"dev":"vite"}}`, ""},
		{`{"name":"x"}`, ""},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"capacitor.config.json": `{"appId":"a.b"}`, "package.json": tt.pkg})
		p, err := Load(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := BuildScript(p); got != tt.want {
			t.Errorf("BuildScript(%s) = %q; want %q", tt.pkg, got, tt.want)
		}
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"capacitor.config.json": `{"appId":"a.b"}`, "package.json": pkgJSON})
	p, err := Load(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.PackageName != "demo-app" || p.PackageVersion != "1.4.2" || p.Scripts["build"] != "vite build" {
		t.Errorf("package fields = %q %q %v", p.PackageName, p.PackageVersion, p.Scripts)
	}
}

func TestWebPath(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"capacitor.config.json": `{"appId":"a.b","webDir":"dist"}`, "package.json": pkgJSON})
	p, err := Load(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.WebPath()
	if !errors.Is(err, ErrWebDirMissing) || !strings.Contains(err.Error(), "npm run generate") {
		t.Fatalf("WebPath() before the build: %v; want ErrWebDirMissing with a hint", err)
	}
	writeFiles(t, dir, map[string]string{"dist/index.html": "x"})
	got, err := p.WebPath()
	if err != nil || got != filepath.Join(p.Dir, "dist") {
		t.Fatalf("WebPath() = %q, %v; want %s", got, err, filepath.Join(p.Dir, "dist"))
	}
}

// TestLoadEvaluatedConfig covers .ts/.js configs without Node, with a
// stand-in for `npx cap config --json`.
func TestLoadEvaluatedConfig(t *testing.T) {
	realOutput := `{"android":{"name":"android"},"app":{"rootDir":"/x","appId":"com.example.tsapp","appName":"TS","webDir":"dist","webDirAbs":"/x/dist","extConfigType":"ts"}}`
	tests := []struct {
		name    string
		out     string
		err     error
		wantApp string
		wantWeb string
		wantErr string
	}{
		{name: "cli output", out: realOutput, wantApp: "com.example.tsapp", wantWeb: "dist"},
		{name: "log lines before the JSON", out: "[warn] something\n" + realOutput, wantApp: "com.example.tsapp", wantWeb: "dist"},
		{name: "no webDir", out: `{"app":{"appId":"a.b"}}`, wantApp: "a.b", wantWeb: "www"},
		{name: "cli fails", err: errors.New("exit status 1: Could not find installation of TypeScript"), wantErr: "npm ci"},
		{name: "garbage", out: "hello", wantErr: "unexpected output"},
		{name: "no app key", out: `{"android":{}}`, wantErr: "unexpected output"},
		{name: "no appId", out: `{"app":{"webDir":"dist"}}`, wantErr: "no appId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"capacitor.config.ts": "export default {}", "capacitor.config.json": `{"appId":"ignored"}`})
			var gotRoot string
			l := loader{eval: func(_ context.Context, root string) ([]byte, error) {
				gotRoot = root
				return []byte(tt.out), tt.err
			}}
			p, err := l.load(t.Context(), dir)
			if gotRoot == "" {
				t.Fatal("the .ts config was not evaluated (json preferred?)")
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("load() error = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.AppID != tt.wantApp || p.WebDir != tt.wantWeb || filepath.Base(p.ConfigFile) != "capacitor.config.ts" {
				t.Errorf("got %q %q %s; want %q %q", p.AppID, p.WebDir, p.ConfigFile, tt.wantApp, tt.wantWeb)
			}
		})
	}
}

// capacitorNodeModules returns the node_modules of the fixture app, which
// holds @capacitor/cli (7) and typescript (5), installing it when missing
// (capapp.Require skips without npm, and fails under CI).
func capacitorNodeModules(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("OTA_TEST_CAPACITOR_NODE_MODULES"); dir != "" {
		return dir
	}
	return filepath.Join(capapp.Require(t), "node_modules")
}

func TestLoadWithCapacitorCLI(t *testing.T) {
	nm := capacitorNodeModules(t)
	tests := []struct {
		file, body string
	}{
		{"capacitor.config.ts", `import type { CapacitorConfig } from '@capacitor/cli';
const config: CapacitorConfig = { appId: 'com.example.ts', appName: 'T', webDir: 'dist' };
export default config;
`},
		{"capacitor.config.js", `module.exports = { appId: 'com.example.js', appName: 'J', webDir: 'public' };`},
	}
	want := map[string][2]string{"capacitor.config.ts": {"com.example.ts", "dist"}, "capacitor.config.js": {"com.example.js", "public"}}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{tt.file: tt.body, "package.json": pkgJSON})
			if err := os.Symlink(nm, filepath.Join(dir, "node_modules")); err != nil {
				t.Fatal(err)
			}
			p, err := Load(t.Context(), dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if w := want[tt.file]; p.AppID != w[0] || p.WebDir != w[1] {
				t.Errorf("AppID, WebDir = %q, %q; want %q, %q", p.AppID, p.WebDir, w[0], w[1])
			}
		})
	}
	t.Run("broken config", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"capacitor.config.ts": "throw new Error('boom from config');\nexport default {};", "package.json": pkgJSON})
		if err := os.Symlink(nm, filepath.Join(dir, "node_modules")); err != nil {
			t.Fatal(err)
		}
		_, err := Load(t.Context(), dir)
		if err == nil || !strings.Contains(err.Error(), "could not evaluate capacitor.config.ts") {
			t.Fatalf("Load error = %v; want could not evaluate", err)
		}
		if !strings.Contains(err.Error(), "boom from config") {
			t.Errorf("Load error = %v; want the CLI's message", err)
		}
	})
}

func TestLoadWithoutCLIInstalled(t *testing.T) {
	if _, err := exec.LookPath("npx"); err != nil {
		t.Skip("npx is not installed")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"capacitor.config.ts": "export default {appId: 'a.b'}", "package.json": pkgJSON})
	_, err := Load(t.Context(), dir)
	if err == nil || !strings.Contains(err.Error(), "npm ci") {
		t.Fatalf("Load error = %v; want advice to run npm ci", err)
	}
}
