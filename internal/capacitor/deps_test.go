package capacitor

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

func TestNotInstalled(t *testing.T) {
	pkg := `{"name":"app","version":"1.0.0","dependencies":{"@capacitor/core":"^7"},"devDependencies":{"@capacitor/cli":"^7","@capacitor/android":"^7"}}`
	installed := func(name string) (string, string) {
		return filepath.Join("node_modules", filepath.FromSlash(name), "package.json"), `{"version":"7.0.0"}`
	}
	tests := []struct {
		name    string
		files   map[string]string
		project string // folder of the project inside the tree
		want    []string
	}{
		{name: "npm ci never ran", files: map[string]string{}, want: []string{"@capacitor/android", "@capacitor/cli", "@capacitor/core"}},
		{name: "one missing", files: func() map[string]string {
			m := map[string]string{}
			for _, n := range []string{"@capacitor/core", "@capacitor/cli"} {
				k, v := installed(n)
				m[k] = v
			}
			return m
		}(), want: []string{"@capacitor/android"}},
		{name: "hoisted into the parent", project: "apps/mobile", files: func() map[string]string {
			m := map[string]string{}
			for _, n := range []string{"@capacitor/core", "@capacitor/cli", "@capacitor/android"} {
				k, v := installed(n)
				m[filepath.Join("..", "..", k)] = v
			}
			return m
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, filepath.FromSlash(tt.project))
			files := map[string]string{"package.json": pkg, "capacitor.config.json": `{"appId":"com.example.app"}`}
			for k, v := range tt.files {
				files[k] = v
			}
			writeFiles(t, dir, files)
			p, err := Load(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.NotInstalled(); !slices.Equal(got, tt.want) {
				t.Errorf("NotInstalled() = %q, want %q", got, tt.want)
			}
			if got, want := p.Installed("@capacitor/android"), !slices.Contains(tt.want, "@capacitor/android"); got != want {
				t.Errorf("Installed(@capacitor/android) = %v, want %v", got, want)
			}
		})
	}
}
