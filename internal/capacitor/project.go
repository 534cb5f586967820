// Package capacitor reads what otactl needs from a Capacitor app's folder:
// the app id and web folder from capacitor.config.*, the build scripts and
// version from package.json, the native version name from the Android
// Gradle file, and the native plugin set that a web bundle depends on.
package capacitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Config file names in the order the Capacitor CLI looks for them
// (@capacitor/cli config.js loadExtConfig): ts wins over js over json.
var configNames = []string{"capacitor.config.ts", "capacitor.config.js", "capacitor.config.json"}

// DefaultWebDir is what Capacitor uses when the config has no webDir.
const DefaultWebDir = "www"

// ErrNoProject is returned by Load when no folder from dir upwards holds a
// capacitor.config file.
var ErrNoProject = errors.New("no Capacitor project found")

// ErrWebDirMissing is returned by Project.WebPath when the web folder does
// not exist (yet).
var ErrWebDirMissing = errors.New("web folder does not exist")

// evalTimeout bounds `npx cap config`, which starts Node and may compile
// TypeScript.
const evalTimeout = 2 * time.Minute

// Project is a Capacitor app folder.
type Project struct {
	// Dir is the absolute project root, the folder of ConfigFile.
	Dir string
	// AppID is appId from the Capacitor config.
	AppID string
	// WebDir is webDir from the config (default "www"), relative to Dir
	// unless absolute. It is not required to exist: a build creates it.
	WebDir string
	// ConfigFile is the absolute path of capacitor.config.{ts,js,json}.
	ConfigFile string
	// PackageName and PackageVersion are name and version from
	// package.json ("" when there is no package.json).
	PackageName, PackageVersion string
	// Scripts are package.json's scripts.
	Scripts map[string]string
	// Dependencies are package.json's dependencies and devDependencies
	// together, name to declared range.
	Dependencies map[string]string
}

// WebPath returns the absolute web folder, or an error wrapping
// ErrWebDirMissing that says how to create it.
func (p *Project) WebPath() (string, error) {
	dir := p.WebDir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(p.Dir, filepath.FromSlash(dir))
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%w: webDir %q (from %s) is not in %s: build the web app first (npm run %s) or fix webDir",
			ErrWebDirMissing, p.WebDir, filepath.Base(p.ConfigFile), p.Dir, orDefault(BuildScript(p), "build"))
	case err != nil:
		return "", fmt.Errorf("web folder: %w", err)
	case !fi.IsDir():
		return "", fmt.Errorf("%w: webDir %s is a file, not a folder", ErrWebDirMissing, dir)
	}
	return dir, nil
}

// Load reads the Capacitor project that holds dir: dir itself or the
// nearest parent with a capacitor.config file. A JSON config is parsed
// directly; a .ts or .js config is evaluated by the project's own Capacitor
// CLI (`npx --no-install cap config --json`), so what otactl sees is what
// `npx cap sync` sees.
func Load(ctx context.Context, dir string) (*Project, error) {
	return loader{eval: capConfigJSON}.load(ctx, dir)
}

// loader holds Load's one outside dependency, so tests can stand in for
// the Capacitor CLI.
type loader struct {
	eval func(ctx context.Context, root string) ([]byte, error)
}

func (l loader) load(ctx context.Context, dir string) (*Project, error) {
	root, cfgFile, err := findRoot(dir)
	if err != nil {
		return nil, err
	}
	p := &Project{Dir: root, ConfigFile: cfgFile}
	if err := readPackageJSON(p); err != nil {
		return nil, err
	}

	var cfg struct {
		AppID  string `json:"appId"`
		WebDir string `json:"webDir"`
	}
	if strings.HasSuffix(cfgFile, ".json") {
		data, err := os.ReadFile(cfgFile)
		if err != nil {
			return nil, fmt.Errorf("read Capacitor config: %w", err)
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("parse %s: %w", cfgFile, err)
		}
	} else {
		out, err := l.eval(ctx, root)
		if err != nil {
			return nil, fmt.Errorf("could not evaluate %s: %w (if @capacitor/cli, or typescript for a .ts config, is not installed, run `npm ci` in %s)",
				filepath.Base(cfgFile), err, root)
		}
		var res struct {
			App *struct {
				AppID  string `json:"appId"`
				WebDir string `json:"webDir"`
			} `json:"app"`
		}
		if err := decodeFirstObject(out, &res); err != nil || res.App == nil {
			return nil, fmt.Errorf("could not evaluate %s: unexpected output from `npx cap config --json` (%v): %q",
				filepath.Base(cfgFile), err, truncate(string(out), 200))
		}
		cfg.AppID, cfg.WebDir = res.App.AppID, res.App.WebDir
	}

	if p.AppID = strings.TrimSpace(cfg.AppID); p.AppID == "" {
		return nil, fmt.Errorf("%s has no appId: set it to the app's id (e.g. com.example.app)", cfgFile)
	}
	if p.WebDir = cfg.WebDir; p.WebDir == "" {
		p.WebDir = DefaultWebDir
	}
	return p, nil
}

// findRoot walks up from dir to the first folder with a config file.
func findRoot(dir string) (root, cfgFile string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return "", "", fmt.Errorf("open project folder: %w", err)
	}
	for d := abs; ; {
		for _, name := range configNames {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return d, p, nil
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", "", fmt.Errorf("%w in %s or its parents (looked for %s): run otactl inside the app's folder",
				ErrNoProject, abs, strings.Join(configNames, ", "))
		}
		d = parent
	}
}

type packageJSON struct {
	Name            string            `json:"name"`
	Version         string            `json:"version"`
	Scripts         map[string]string `json:"scripts"`
	Dependencies    map[string]string `json:"dependencies"`
	DevDependencies map[string]string `json:"devDependencies"`
}

func readPackageFile(path string) (*packageJSON, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pkg packageJSON
	if err := json.Unmarshal(data, &pkg); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return &pkg, nil
}

// readPackageJSON fills the package fields; a project without package.json
// is allowed (the fields stay empty and the caller says what is missing).
func readPackageJSON(p *Project) error {
	pkg, err := readPackageFile(filepath.Join(p.Dir, "package.json"))
	if errors.Is(err, fs.ErrNotExist) {
		p.Scripts, p.Dependencies = map[string]string{}, map[string]string{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read package.json: %w", err)
	}
	p.PackageName, p.PackageVersion, p.Scripts = pkg.Name, pkg.Version, pkg.Scripts
	if p.Scripts == nil {
		p.Scripts = map[string]string{}
	}
	p.Dependencies = map[string]string{}
	for name, spec := range pkg.DevDependencies {
		p.Dependencies[name] = spec
	}
	for name, spec := range pkg.Dependencies {
		p.Dependencies[name] = spec
	}
	return nil
}

// BuildScript is the package.json script that builds the web app:
// "generate" (static Nuxt-style builds) when present, else "build", else "".
func BuildScript(p *Project) string {
	for _, s := range []string{"generate", "build"} {
		if _, ok := p.Scripts[s]; ok {
			return s
		}
	}
	return ""
}

// capConfigJSON runs the project's Capacitor CLI to print the evaluated
// config. --no-install keeps npx from downloading a CLI of another version.
func capConfigJSON(ctx context.Context, root string) ([]byte, error) {
	npx, err := exec.LookPath("npx")
	if err != nil {
		return nil, fmt.Errorf("npx not found on PATH (install Node.js): %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, evalTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npx, "--no-install", "cap", "config", "--json")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "FORCE_COLOR=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return nil, fmt.Errorf("`npx --no-install cap config --json` failed (%w): %s", err, truncate(summarize(msg, 6), 800))
	}
	return stdout.Bytes(), nil
}

// decodeFirstObject decodes the first JSON object in out, skipping any log
// lines a CLI printed before it.
func decodeFirstObject(out []byte, v any) error {
	for i := 0; i < len(out); i++ {
		if out[i] != '{' || (i > 0 && out[i-1] != '\n') {
			continue
		}
		if err := json.NewDecoder(bytes.NewReader(out[i:])).Decode(v); err == nil {
			return nil
		}
	}
	return errors.New("no JSON object in the output")
}

// summarize keeps the first n lines of a Node error that say something:
// stack frames and blank lines go.
func summarize(s string, n int) string {
	var keep []string
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "at ") {
			continue
		}
		if keep = append(keep, line); len(keep) == n {
			break
		}
	}
	return strings.Join(keep, " ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
