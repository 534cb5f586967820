package capacitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// corePackage carries the Capacitor runtime version.
const corePackage = "@capacitor/core"

// Fingerprint is the native side a web bundle depends on: the Capacitor
// version and the native plugins compiled into the app.
type Fingerprint struct {
	// Capacitor is the @capacitor/core version ("" when unknown).
	Capacitor string `json:"capacitor"`
	// Plugins are "name@version", sorted.
	Plugins []string `json:"plugins"`
}

// NativeFingerprint lists what `npx cap sync` would compile into the
// native app: every dependency or devDependency of the project whose
// package.json has a "capacitor" key, or that ships a plugin.xml (Cordova
// plugins). Packages are found in node_modules of the project or of a
// parent folder, as Node resolves them, so hoisted monorepos work.
func NativeFingerprint(projectDir string) (Fingerprint, error) {
	root, err := filepath.Abs(projectDir)
	if err != nil {
		return Fingerprint{}, fmt.Errorf("resolve %s: %w", projectDir, err)
	}
	pkg, err := readPackageFile(filepath.Join(root, "package.json"))
	if err != nil {
		return Fingerprint{}, fmt.Errorf("native fingerprint: %w", err)
	}
	deps := map[string]string{}
	for name, spec := range pkg.DevDependencies {
		deps[name] = spec
	}
	for name, spec := range pkg.Dependencies {
		deps[name] = spec
	}

	// The installed version, not the declared range: it is what the native
	// build compiled. A declared but missing core fails below with the
	// other missing packages, as `npx cap sync` would.
	var fp Fingerprint
	if meta, _, err := readInstalled(root, corePackage); err == nil {
		fp.Capacitor = meta.Version
	}

	var missing []string
	for name := range deps {
		meta, dir, err := readInstalled(root, name)
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return Fingerprint{}, fmt.Errorf("native fingerprint: %w", err)
		}
		if !meta.isNative(dir) {
			continue
		}
		fp.Plugins = append(fp.Plugins, name+"@"+meta.Version)
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return Fingerprint{}, fmt.Errorf("native fingerprint: %s not installed in %s: run `npm ci` first",
			strings.Join(missing, ", "), root)
	}
	sort.Strings(fp.Plugins)
	return fp, nil
}

type installedPackage struct {
	Version   string          `json:"version"`
	Capacitor json.RawMessage `json:"capacitor"`
}

// isNative reports whether cap sync treats the package as a native plugin.
func (m installedPackage) isNative(dir string) bool {
	if len(m.Capacitor) > 0 && string(m.Capacitor) != "null" {
		return true
	}
	_, err := os.Stat(filepath.Join(dir, "plugin.xml"))
	return err == nil
}

// readInstalled finds name's package.json the way Node does: in
// node_modules of root, then of each parent folder.
func readInstalled(root, name string) (installedPackage, string, error) {
	for d := root; ; {
		dir := filepath.Join(d, "node_modules", filepath.FromSlash(name))
		data, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if err == nil {
			var m installedPackage
			if err := json.Unmarshal(data, &m); err != nil {
				return installedPackage{}, "", fmt.Errorf("parse %s: %w", filepath.Join(dir, "package.json"), err)
			}
			return m, dir, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return installedPackage{}, "", fmt.Errorf("read %s: %w", name, err)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return installedPackage{}, "", fmt.Errorf("%s: %w", name, fs.ErrNotExist)
		}
		d = parent
	}
}

// Missing lists what the bundle built against f needs but the shipped app
// lacks: plugins absent from shipped or at a different major version
// (minor for 0.x, where semver lets minors break), and @capacitor/core
// when its major differs. Empty means the bundle is safe to ship over the
// air to that app.
func (f Fingerprint) Missing(shipped Fingerprint) []string {
	have := map[string]string{}
	for _, p := range shipped.Plugins {
		name, v := splitPlugin(p)
		have[name] = v
	}
	var out []string
	if f.Capacitor != "" && shipped.Capacitor != "" && majorOf(f.Capacitor) != majorOf(shipped.Capacitor) {
		out = append(out, fmt.Sprintf("%s@%s (app has %s)", corePackage, f.Capacitor, shipped.Capacitor))
	}
	for _, p := range f.Plugins {
		name, v := splitPlugin(p)
		sv, ok := have[name]
		switch {
		case !ok:
			out = append(out, p+" (not in the app)")
		case majorOf(v) != majorOf(sv):
			out = append(out, fmt.Sprintf("%s (app has %s)", p, sv))
		}
	}
	slices.Sort(out)
	return out
}

// splitPlugin splits "name@version"; scoped names start with '@'.
func splitPlugin(p string) (name, version string) {
	i := strings.LastIndexByte(p, '@')
	if i <= 0 {
		return p, ""
	}
	return p[:i], p[i+1:]
}

// majorOf returns the part of a version that may not change without
// native changes: "7" for 7.2.1, "0.4" for 0.4.2.
func majorOf(v string) string {
	v = strings.TrimLeft(v, "^~=>< v")
	parts := strings.SplitN(v, ".", 3)
	if parts[0] == "0" && len(parts) > 1 {
		return "0." + parts[1]
	}
	return parts[0]
}
