package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"

	"github.com/otaship/ota/internal/capacitor"
	"github.com/otaship/ota/internal/cli/config"
	"github.com/otaship/ota/internal/cli/iostreams"
	"github.com/otaship/ota/internal/version"
	"github.com/otaship/ota/pkg/ota"
)

// Factory holds what commands depend on. Commands never reach for the
// process's globals (os.Stdout, os.Getenv, http.DefaultClient) directly.
type Factory struct {
	IO         *iostreams.IOStreams
	Getenv     func(string) string
	Now        func() time.Time
	HTTPClient *http.Client
	Runner     Runner
	LookPath   func(string) (string, error)
	// WorkDir is where project lookups start (the current directory).
	WorkDir string

	// Global flags, filled in by the root command.
	flags globalFlags
	cfg   *config.Config
}

type globalFlags struct {
	server, appID, output, configFile string
	// set lists the flags the user gave, by config key.
	set map[string]string
}

// NewFactory returns a Factory over the real process.
func NewFactory() *Factory {
	wd, _ := os.Getwd()
	// No overall timeout: an APK upload on a slow link may take minutes.
	// A server that accepts a request and then never answers is caught by
	// the response header timeout instead.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 5 * time.Minute
	return &Factory{
		IO:         iostreams.System(os.Getenv),
		Getenv:     os.Getenv,
		Now:        time.Now,
		HTTPClient: &http.Client{Transport: tr},
		Runner:     ExecRunner{},
		LookPath:   exec.LookPath,
		WorkDir:    wd,
	}
}

// Config loads the configuration once, after flags are parsed.
func (f *Factory) Config() (*config.Config, error) {
	if f.cfg != nil {
		return f.cfg, nil
	}
	cfg, err := config.Load(config.LoadOptions{
		Getenv: f.Getenv, WorkDir: f.WorkDir, ConfigFile: f.flags.configFile, Flags: f.flags.set,
	})
	if err != nil {
		return nil, err
	}
	f.cfg = cfg
	return cfg, nil
}

// JSON reports whether -o json is in effect.
func (f *Factory) JSON() bool {
	cfg, err := f.Config()
	return err == nil && cfg.Output == config.OutputJSON
}

// Client returns an API client for the configured server. With
// needToken, a missing token is an *AuthError telling to log in.
func (f *Factory) Client(needToken bool) (*ota.Client, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	if cfg.Server == "" {
		return nil, flagErrorf("no server configured: pass --server URL, set OTACTL_SERVER, or run: otactl login --server URL")
	}
	if needToken && cfg.Token == "" {
		return nil, &AuthError{Err: fmt.Errorf("not logged in to %s; run: otactl login", cfg.Server)}
	}
	// A stored token known to be expired fails here, before a build that
	// may take minutes, rather than at the upload.
	if needToken && !cfg.TokenExpires.IsZero() && !f.Now().Before(cfg.TokenExpires) {
		return nil, &AuthError{Err: fmt.Errorf("the login to %s expired at %s; run: otactl login", cfg.Server, humanTime(cfg.TokenExpires))}
	}
	return ota.NewClient(cfg.Server,
		ota.WithToken(cfg.Token),
		ota.WithHTTPClient(f.HTTPClient),
		ota.WithUserAgent("otactl/"+version.Info().Version))
}

// AppClient is Client(true) and AppID: what every command that acts on
// one app needs first.
func (f *Factory) AppClient(ctx context.Context) (*ota.Client, string, error) {
	client, err := f.Client(true)
	if err != nil {
		return nil, "", err
	}
	app, err := f.AppID(ctx)
	if err != nil {
		return nil, "", err
	}
	return client, app, nil
}

// AppID is the app the command acts on: --app-id / OTACTL_APP_ID / the
// config files, else the appId of the Capacitor project around WorkDir.
func (f *Factory) AppID(ctx context.Context) (string, error) {
	cfg, err := f.Config()
	if err != nil {
		return "", err
	}
	if cfg.AppID != "" {
		return cfg.AppID, nil
	}
	if config.FindProjectDir(f.WorkDir) == "" {
		return "", flagErrorf("no app id: pass --app-id, set OTACTL_APP_ID, or run inside a Capacitor project")
	}
	p, err := capacitor.Load(ctx, f.WorkDir)
	if err != nil {
		return "", fmt.Errorf("read the app id from the Capacitor project: %w", err)
	}
	return p.AppID, nil
}

// Runner runs child processes (npm, npx, docker).
type Runner interface {
	Run(ctx context.Context, c Cmd) error
}

// Cmd is one child process. Its output streams straight to the writers.
type Cmd struct {
	Name string
	Args []string
	Dir  string
	// Env holds NAME=value entries added to the environment otactl runs
	// in (OTA_VERSION for a build).
	Env    []string
	Stdout io.Writer
	Stderr io.Writer
}

// ExecRunner runs commands with os/exec. Stdin is not passed on: a build
// that asks a question would otherwise hang a CI job.
type ExecRunner struct{}

// Run starts c and waits for it. A non-zero exit is an *exec.ExitError.
func (ExecRunner) Run(ctx context.Context, c Cmd) error {
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Dir = c.Dir
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	cmd.Stdout = c.Stdout
	cmd.Stderr = c.Stderr
	// Give a cancelled build a moment to stop its own children.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	return cmd.Run()
}

// exitStatus extracts a child's exit status (*exec.ExitError has
// ExitCode), or -1 when it did not run to an exit.
func exitStatus(err error) int {
	var ee interface{ ExitCode() int }
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
