package capacitor

import (
	"slices"
	"strings"
	"testing"
)

func TestGradleVersionName(t *testing.T) {
	tests := []struct {
		name    string
		file    string // under android/app; "" for none
		src     string
		want    string
		wantErr string
	}{
		{name: "groovy double quotes", file: "build.gradle", src: `android {
    namespace "com.example.app"
    defaultConfig {
        applicationId "com.example.app"
        versionCode 42
        versionName "1.2.3"
    }
}`, want: "1.2.3"},
		{name: "groovy single quotes", file: "build.gradle", src: "android { defaultConfig { versionName '2.0.0-beta.1' } }", want: "2.0.0-beta.1"},
		{name: "groovy assignment and call", file: "build.gradle", src: "defaultConfig {\n  versionName = '3.1'\n}\n", want: "3.1"},
		{name: "groovy call", file: "build.gradle", src: "defaultConfig {\n  versionName(\"3.2\")\n}\n", want: "3.2"},
		{name: "kotlin dsl", file: "build.gradle.kts", src: `android {
    defaultConfig {
        applicationId = "com.example.app"
        versionCode = 7
        versionName = "1.4.0"
    }
}`, want: "1.4.0"},
		{name: "comments and strings do not count", file: "build.gradle", src: `// versionName "0.0.1"
/* versionName "0.0.2"
   } } } */
repositories { maven { url 'https://jitpack.io' } }   // a url with // inside
def s = "versionName \"9.9\""
android {
    defaultConfig {
        versionName "1.0.0" // the real one
    }
}`, want: "1.0.0"},
		{name: "defaultConfig wins over flavours", file: "build.gradle", src: `android {
    productFlavors {
        free { versionName "0.9-free" }
    }
    defaultConfig { versionName "1.5.0" }
}`, want: "1.5.0"},
		{name: "only a flavour", file: "build.gradle", src: `android { productFlavors { free { versionName "0.9" } } }`, want: "0.9"},
		{name: "suffix is not the name", file: "build.gradle", src: "defaultConfig {\n versionNameSuffix '-dbg'\n versionName '1.1'\n}", want: "1.1"},
		{name: "variable", file: "build.gradle", src: "defaultConfig {\n versionName rootProject.ext.appVersion\n}", wantErr: "not a quoted string"},
		{name: "interpolated", file: "build.gradle", src: "defaultConfig {\n versionName \"${major}.0\"\n}", wantErr: "computed"},
		{name: "empty", file: "build.gradle", src: "defaultConfig {\n versionName \"\"\n}", wantErr: "empty"},
		{name: "missing", file: "build.gradle", src: "android { defaultConfig { versionCode 1 } }", wantErr: "no versionName"},
		{name: "no android folder", wantErr: "npx cap add android"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != "" {
				writeFiles(t, dir, map[string]string{"android/app/" + tt.file: tt.src})
			}
			got, err := GradleVersionName(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("GradleVersionName() = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("GradleVersionName() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func FuzzParseVersionName(f *testing.F) {
	f.Add("android { defaultConfig { versionName \"1.2.3\" } }")
	f.Add("defaultConfig {\n versionName = '3.1'\n}")
	f.Add("/* x */ versionName(\"1\") // y")
	f.Add("versionName \"\"\"a\"\"\"")
	f.Add("versionName '")
	f.Fuzz(func(t *testing.T, src string) {
		v, err := parseVersionName(src)
		if err != nil {
			if v != "" {
				t.Fatalf("parseVersionName returned %q with error %v", v, err)
			}
			return
		}
		if v == "" || strings.ContainsAny(v, "\"'\n\\") || v != strings.TrimSpace(v) {
			t.Fatalf("parseVersionName(%q) = %q: not a clean version", src, v)
		}
	})
}

// project writes a package.json and node_modules packages (name → their
// package.json) under a temp folder.
func project(t *testing.T, pkg string, modules map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"package.json": pkg}
	for name, body := range modules {
		files["node_modules/"+name+"/package.json"] = body
	}
	writeFiles(t, dir, files)
	return dir
}

func TestNativeFingerprint(t *testing.T) {
	dir := project(t, `{
  "dependencies": {"@capacitor/core": "^7.2.0", "@capacitor/camera": "^7.0.0", "vue": "^3.4.0",
                   "@capgo/capacitor-updater": "8.51.14", "cordova-plugin-x": "1.0.0"},
  "devDependencies": {"@capacitor/cli": "^7.2.0", "@capacitor/haptics": "7.0.1"}
}`, map[string]string{
		"@capacitor/core":          `{"name":"@capacitor/core","version":"7.2.0"}`,
		"@capacitor/cli":           `{"name":"@capacitor/cli","version":"7.2.0","bin":{"capacitor":"./bin/capacitor"}}`,
		"@capacitor/camera":        `{"name":"@capacitor/camera","version":"7.0.1","capacitor":{"ios":{"src":"ios"},"android":{"src":"android"}}}`,
		"@capacitor/haptics":       `{"name":"@capacitor/haptics","version":"7.0.1","capacitor":{"android":{"src":"android"}}}`,
		"@capgo/capacitor-updater": `{"name":"@capgo/capacitor-updater","version":"8.51.14","capacitor":{"ios":{"src":"ios"}}}`,
		"vue":                      `{"name":"vue","version":"3.4.21"}`,
		"cordova-plugin-x":         `{"name":"cordova-plugin-x","version":"1.0.0"}`,
	})
	writeFiles(t, dir, map[string]string{"node_modules/cordova-plugin-x/plugin.xml": "<plugin/>"})

	got, err := NativeFingerprint(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Fingerprint{Capacitor: "7.2.0", Plugins: []string{
		"@capacitor/camera@7.0.1", "@capacitor/haptics@7.0.1", "@capgo/capacitor-updater@8.51.14", "cordova-plugin-x@1.0.0",
	}}
	if got.Capacitor != want.Capacitor || !slices.Equal(got.Plugins, want.Plugins) {
		t.Errorf("NativeFingerprint() = %+v;\nwant %+v", got, want)
	}
}

func TestNativeFingerprintHoisted(t *testing.T) {
	// A monorepo: the app's dependencies live in the workspace root.
	root := project(t, `{"workspaces":["apps/*"]}`, map[string]string{
		"@capacitor/core":   `{"version":"6.1.0"}`,
		"@capacitor/camera": `{"version":"6.0.2","capacitor":{"android":{}}}`,
	})
	writeFiles(t, root, map[string]string{"apps/mobile/package.json": `{"dependencies":{"@capacitor/core":"^6.1.0","@capacitor/camera":"^6.0.0"}}`})
	got, err := NativeFingerprint(root + "/apps/mobile")
	if err != nil {
		t.Fatal(err)
	}
	if got.Capacitor != "6.1.0" || !slices.Equal(got.Plugins, []string{"@capacitor/camera@6.0.2"}) {
		t.Errorf("NativeFingerprint() = %+v", got)
	}
}

func TestNativeFingerprintErrors(t *testing.T) {
	tests := []struct {
		name    string
		pkg     string
		modules map[string]string
		want    string
	}{
		{"not installed", `{"dependencies":{"@capacitor/camera":"^7"}}`, nil, "npm ci"},
		{"no package.json", "", nil, "package.json"},
		{"bad module json", `{"dependencies":{"x":"1"}}`, map[string]string{"x": "{"}, "parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.pkg != "" {
				dir = project(t, tt.pkg, tt.modules)
			}
			_, err := NativeFingerprint(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NativeFingerprint() error = %v; want %q", err, tt.want)
			}
		})
	}
	// No Capacitor at all: an empty fingerprint, not an error.
	dir := project(t, `{"dependencies":{"vue":"^3"}}`, map[string]string{"vue": `{"version":"3.4.0"}`})
	if fp, err := NativeFingerprint(dir); err != nil || fp.Capacitor != "" || len(fp.Plugins) != 0 {
		t.Errorf("NativeFingerprint() = %+v, %v; want empty", fp, err)
	}
}

func TestFingerprintMissing(t *testing.T) {
	shipped := Fingerprint{Capacitor: "7.0.0", Plugins: []string{"@capacitor/camera@7.0.1", "@capgo/capacitor-updater@8.40.0", "old-plugin@0.4.1"}}
	tests := []struct {
		name string
		f    Fingerprint
		want []string
	}{
		{"same", shipped, nil},
		{"minor and patch bumps are fine", Fingerprint{Capacitor: "7.4.2", Plugins: []string{"@capacitor/camera@7.9.0", "@capgo/capacitor-updater@8.51.14", "old-plugin@0.4.9"}}, nil},
		{"fewer plugins are fine", Fingerprint{Capacitor: "7.0.0", Plugins: []string{"@capacitor/camera@7.0.1"}}, nil},
		{"new plugin", Fingerprint{Capacitor: "7.0.0", Plugins: []string{"@capacitor/camera@7.0.1", "@capacitor/haptics@7.0.0"}},
			[]string{"@capacitor/haptics@7.0.0 (not in the app)"}},
		{"major bump", Fingerprint{Capacitor: "7.0.0", Plugins: []string{"@capacitor/camera@8.0.0"}},
			[]string{"@capacitor/camera@8.0.0 (app has 7.0.1)"}},
		{"0.x minor bump", Fingerprint{Plugins: []string{"old-plugin@0.5.0"}},
			[]string{"old-plugin@0.5.0 (app has 0.4.1)"}},
		{"capacitor major", Fingerprint{Capacitor: "8.0.0"},
			[]string{"@capacitor/core@8.0.0 (app has 7.0.0)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Missing(shipped); !slices.Equal(got, tt.want) {
				t.Errorf("Missing() = %q; want %q", got, tt.want)
			}
		})
	}
}
