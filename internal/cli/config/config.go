// Package config loads otactl's settings and keeps its login tokens.
//
// Settings come, highest first, from command-line flags, OTACTL_* variables,
// an otactl.yaml beside the project's capacitor.config.*, the user config
// file ($XDG_CONFIG_HOME/otactl/config.yaml) and defaults. One viper
// instance, private to Load, layers the files; nothing else sees viper.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// Setting keys, as written in YAML files. The environment variable of a
// key is OTACTL_ followed by the key in upper case.
const (
	KeyServer = "server"
	KeyAppID  = "app_id"
	KeyOutput = "output"
	// KeySignKey names the RSA private key otactl deploy web signs bundles
	// with for @capawesome/capacitor-live-update (OTACTL_SIGN_KEY). A
	// relative path in a settings file is relative to that file.
	KeySignKey = "sign_key"
	// KeyDelta makes otactl deploy web upload delta releases by default
	// (a project setting: delta: true in otactl.yaml).
	KeyDelta = "delta"
)

// Output formats.
const (
	OutputTable = "table"
	OutputJSON  = "json"
)

// ProjectFile is the per-project settings file, kept beside capacitor.config.*.
const ProjectFile = "otactl.yaml"

// Config is otactl's resolved configuration.
type Config struct {
	Server string `mapstructure:"server"`
	AppID  string `mapstructure:"app_id"`
	Output string `mapstructure:"output"`
	// SignKey is the signing key's path, absolute once loaded; "" for none.
	SignKey string `mapstructure:"sign_key"`
	// Delta is the default of otactl deploy web --delta.
	Delta bool `mapstructure:"delta"`

	// Token is the bearer token for Server: OTACTL_TOKEN when set, else
	// the one stored by otactl login. Empty when there is none.
	Token string `mapstructure:"-"`
	// TokenFromEnv tells whether Token came from OTACTL_TOKEN.
	TokenFromEnv bool `mapstructure:"-"`
	// TokenExpires is when the stored token expires (zero: unknown, as for
	// OTACTL_TOKEN).
	TokenExpires time.Time `mapstructure:"-"`

	// Dir is the user config directory (tokens live there).
	Dir string `mapstructure:"-"`
	// Files lists the settings files that were read, lowest priority first.
	Files []string `mapstructure:"-"`
}

// LoadOptions say where Load looks. Getenv is required.
type LoadOptions struct {
	Getenv func(string) string
	// WorkDir is where the search for a Capacitor project starts.
	WorkDir string
	// ConfigFile, when set (--config), replaces the user config file and
	// must exist.
	ConfigFile string
	// Flags holds the values of the command-line flags the user set, by key.
	Flags map[string]string
}

// Load resolves the configuration.
func Load(o LoadOptions) (*Config, error) {
	dir, err := UserDir(o.Getenv)
	if err != nil {
		return nil, err
	}
	v := viper.New()
	v.SetConfigType("yaml")
	v.SetDefault(KeyOutput, OutputTable)
	cfg := &Config{Dir: dir}

	userFile := filepath.Join(dir, "config.yaml")
	mustExist := false
	if o.ConfigFile != "" {
		userFile, mustExist = o.ConfigFile, true
	}
	files := []string{userFile}
	if p := FindProjectDir(o.WorkDir); p != "" {
		files = append(files, filepath.Join(p, ProjectFile))
	}
	signBase := o.WorkDir // what a relative sign_key is relative to
	for i, f := range files {
		before := v.GetString(KeySignKey)
		if err := mergeFile(v, f, mustExist && i == 0); err != nil {
			return nil, err
		} else if fileExists(f) {
			cfg.Files = append(cfg.Files, f)
		}
		if v.GetString(KeySignKey) != before {
			signBase = filepath.Dir(f)
		}
	}
	if val := o.Getenv("OTACTL_" + strings.ToUpper(KeySignKey)); val != "" {
		v.Set(KeySignKey, val)
		signBase = o.WorkDir
	}
	// The environment and flags are applied by hand rather than through
	// viper's AutomaticEnv/BindPFlag so both can be injected in tests.
	for _, key := range []string{KeyServer, KeyAppID, KeyOutput, KeyDelta} {
		if val := o.Getenv("OTACTL_" + strings.ToUpper(key)); val != "" {
			v.Set(key, val)
		}
		if val, ok := o.Flags[key]; ok {
			v.Set(key, val)
		}
	}
	if err := v.Unmarshal(cfg); err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	cfg.Server = strings.TrimRight(strings.TrimSpace(cfg.Server), "/")
	if cfg.SignKey != "" && !filepath.IsAbs(cfg.SignKey) {
		cfg.SignKey = filepath.Join(signBase, cfg.SignKey)
	}
	switch cfg.Output {
	case OutputTable, OutputJSON:
	default:
		return nil, fmt.Errorf("output format %q is not one of table, json", cfg.Output)
	}

	creds, err := LoadCredentials(dir)
	if err != nil {
		return nil, err
	}
	if cfg.Server == "" {
		// The server of the last login is the natural default.
		cfg.Server = creds.Current
	}
	if t := o.Getenv("OTACTL_TOKEN"); t != "" {
		cfg.Token, cfg.TokenFromEnv = t, true
	} else if t, ok := creds.Tokens[cfg.Server]; ok {
		cfg.Token, cfg.TokenExpires = t.Token, t.ExpiresAt
	}
	return cfg, nil
}

func mergeFile(v *viper.Viper, path string, mustExist bool) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !mustExist {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open config file: %w", err)
	}
	defer f.Close()
	if err := v.MergeConfig(f); err != nil {
		return fmt.Errorf("config file %s is not valid YAML: %w", path, err)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// UserDir is otactl's directory in the user config dir:
// $XDG_CONFIG_HOME/otactl, else the platform's (~/.config/otactl on Linux).
func UserDir(getenv func(string) string) (string, error) {
	if x := getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "otactl"), nil
	}
	if runtime.GOOS != "windows" && runtime.GOOS != "darwin" {
		if h := getenv("HOME"); h != "" {
			return filepath.Join(h, ".config", "otactl"), nil
		}
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config directory (set XDG_CONFIG_HOME or HOME): %w", err)
	}
	return filepath.Join(d, "otactl"), nil
}

// FindProjectDir returns dir or its nearest parent that holds a
// capacitor.config.json, .ts or .js, or "" when there is none.
func FindProjectDir(dir string) string {
	if dir == "" {
		return ""
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		for _, ext := range []string{"json", "ts", "js"} {
			if fileExists(filepath.Join(dir, "capacitor.config."+ext)) {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
