package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/otaship/ota/internal/capacitor"
	"github.com/otaship/ota/internal/cli/config"
	"github.com/otaship/ota/pkg/ota"
)

// NewCmdDeploy builds `otactl deploy` and its subcommands.
func NewCmdDeploy(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy <command>",
		Short: "Build and upload a web bundle or an APK",
		Long: `Build the Capacitor project in the current directory (or a parent) and
upload the result to otad: "deploy web" for a live-update bundle, "deploy apk"
for a native Android build.`,
		Example: `  otactl deploy web
  otactl deploy web 1.2.0 --channel beta
  otactl deploy apk --release`,
		Args: noArgs,
		// A parent alone shows its help; with an unknown subcommand noArgs
		// has already failed with a usage error.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(NewCmdDeployWeb(f, nil), NewCmdDeployAPK(f, nil))
	return cmd
}

// buildFlags are the build-step flags both deploy commands share.
type buildFlags struct {
	BuildCmd  string
	SkipBuild bool
	NoSync    bool
}

func (b *buildFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&b.BuildCmd, "build-cmd", "", `build command run with "sh -c" instead of "npm run generate|build"`)
	cmd.Flags().BoolVar(&b.SkipBuild, "skip-build", false, "use the existing build: run neither the build nor npx cap sync")
	cmd.Flags().BoolVar(&b.NoSync, "no-sync", false, "do not run npx cap sync after the build")
}

// loadProject finds and reads the Capacitor project around f.WorkDir.
func loadProject(ctx context.Context, f *Factory) (*capacitor.Project, error) {
	dir := config.FindProjectDir(f.WorkDir)
	if dir == "" {
		return nil, flagErrorf("no Capacitor project (capacitor.config.json, .ts or .js) in %s or its parents: run otactl inside the app's folder", f.WorkDir)
	}
	p, err := capacitor.Load(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("read Capacitor project %s: %w", dir, err)
	}
	return p, nil
}

// checkDeployVersion validates the version to deploy, named by from
// ("VERSION", "the version in package.json"), before anything runs: a bad
// one is a usage error found before the build, not at the upload.
func checkDeployVersion(version, kind, from string) error {
	if err := ota.ValidateVersion(version, kind); err != nil {
		return flagErrorf("%s: %v", from, err)
	}
	return nil
}

// checkChannelFlag validates --channel before anything runs.
func checkChannelFlag(channel string) error {
	if err := ota.ValidateChannel(channel); err != nil {
		return flagErrorf("--channel: %v", err)
	}
	return nil
}

// checkLogin asks otad whose token the client has, so an expired, revoked
// or mistyped token, or a server that is down, fails before a build that
// may take minutes rather than at the upload.
func checkLogin(ctx context.Context, client *ota.Client) error {
	if _, err := client.Me(ctx); err != nil {
		return fmt.Errorf("check the login to %s before building: %w", client.BaseURL, err)
	}
	return nil
}

// VersionEnv is the environment variable the build and npx cap sync get
// holding the version being deployed, so the app can show it (and the
// bundle changes with it) even when package.json still names another.
const VersionEnv = "OTA_VERSION"

// buildWeb runs the web build and npx cap sync (with syncArgs, e.g.
// "android") as b says, with version in VersionEnv.
func buildWeb(ctx context.Context, f *Factory, p *capacitor.Project, b buildFlags, version string, syncArgs ...string) error {
	if b.SkipBuild {
		return nil
	}
	env := []string{VersionEnv + "=" + version}
	switch {
	case b.BuildCmd != "":
		if _, err := runStepCapture(ctx, f, "build", p.Dir, b.BuildCmd, env, "sh", "-c", b.BuildCmd); err != nil {
			return withNodeHint(err, p.Dir)
		}
	default:
		script := capacitor.BuildScript(p)
		if script == "" {
			return flagErrorf(`package.json in %s has no "generate" or "build" script: add one, pass --build-cmd, or use --skip-build`, p.Dir)
		}
		if _, err := runStepCapture(ctx, f, "build", p.Dir, "npm run "+script, env, "npm", "run", script); err != nil {
			return withNodeHint(err, p.Dir)
		}
	}
	if b.NoSync {
		return nil
	}
	args := append([]string{"cap", "sync"}, syncArgs...)
	_, err := runStepCapture(ctx, f, "sync", p.Dir, "npx "+strings.Join(args, " "), env, "npx", args...)
	return withNodeHint(err, p.Dir)
}

// checkBuildable fails before a build that cannot work: a project whose
// declared packages are not installed fails later with npm's "could not
// determine executable to run" or "sh: vite: not found", which do not say
// what to do.
func checkBuildable(p *capacitor.Project, b buildFlags) error {
	if b.SkipBuild {
		return nil
	}
	missing := p.NotInstalled()
	if len(missing) == 0 {
		return nil
	}
	var err error
	switch list := strings.Join(missing, ", "); {
	case len(missing) == len(p.Dependencies):
		err = fmt.Errorf("the packages of package.json are not installed in %s (no %s in node_modules)", p.Dir, list)
	case len(missing) == 1:
		err = fmt.Errorf("%s, a package of package.json, is not installed in %s", list, p.Dir)
	default:
		err = fmt.Errorf("%s, packages of package.json, are not installed in %s", list, p.Dir)
	}
	return &StepError{Step: "build", NotStarted: true, Err: err, Hint: "run npm ci (or npm install) in " + p.Dir}
}

// nodeFailures are what npm, npx and sh print when a project's packages
// are not installed.
var nodeFailures = []string{
	"could not determine executable to run", // npx with no local bin
	"command not found", ": not found",      // sh running a missing bin
	"Cannot find module", // node requiring a missing package
}

// withNodeHint adds to a failed build or sync step the fix for a project
// whose packages are not installed, when its output says so.
func withNodeHint(err error, dir string) error {
	var se *StepError
	if !errors.As(err, &se) || se.Hint != "" {
		return err
	}
	for _, m := range nodeFailures {
		if strings.Contains(se.output, m) {
			se.Hint = "are the project's packages installed? run npm ci (or npm install) in " + dir
			break
		}
	}
	return err
}

// runStepCapture runs one child process with its output streaming through
// to the user (with -o json its stdout goes to stderr so stdout stays
// JSON), env added to its environment. It returns the tail of the child's
// stderr, for recognising well-known failures; a failure is a *StepError
// that keeps it too.
func runStepCapture(ctx context.Context, f *Factory, step, dir, display string, env []string, name string, args ...string) (string, error) {
	fmt.Fprintf(f.IO.ErrOut, "==> %s\n", display)
	stdout := f.IO.Out
	if f.JSON() {
		stdout = f.IO.ErrOut
	}
	tail := &tailBuffer{max: 8 << 10}
	err := f.Runner.Run(ctx, Cmd{
		Name: name, Args: args, Dir: dir, Env: env,
		Stdout: io.MultiWriter(stdout, tail), Stderr: io.MultiWriter(f.IO.ErrOut, tail),
	})
	if err != nil {
		if ctx.Err() != nil {
			return tail.String(), fmt.Errorf("%s interrupted: %w", step, ctx.Err())
		}
		return tail.String(), &StepError{Step: step, Command: display, Status: exitStatus(err), Err: err, output: tail.String()}
	}
	return tail.String(), nil
}

// tailBuffer keeps the last max bytes written to it. It is written by a
// child's output copier, so it locks.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// uploadFile uploads path with a progress bar on a terminal.
func uploadFile(ctx context.Context, f *Factory, client *ota.Client, req ota.UploadRequest, path string) (ota.UploadResult, error) {
	file, err := os.Open(path)
	if err != nil {
		return ota.UploadResult{}, fmt.Errorf("open %s for upload: %w", path, err)
	}
	defer file.Close()
	req.File = file
	if req.FileName == "" {
		req.FileName = filepath.Base(path)
	}
	fmt.Fprintf(f.IO.ErrOut, "==> uploading %s (%s) to %s\n", req.FileName, humanBytes(req.Size), client.BaseURL)
	if f.IO.IsStderrTTY() {
		bar := newProgressBar(f, req.Size)
		req.Progress = func(n int64) { _ = bar.Set64(n) }
		defer func() { _ = bar.Finish(); fmt.Fprintln(f.IO.ErrOut) }()
	}
	res, err := client.Upload(ctx, req)
	if err != nil {
		return res, fmt.Errorf("upload %s %s to %s: %w", req.AppID, req.Version, client.BaseURL, err)
	}
	return res, nil
}

// newProgressBar shows bytes, rate and ETA on stderr; colour only when the
// terminal allows it (NO_COLOR).
func newProgressBar(f *Factory, size int64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(f.IO.ErrOut),
		progressbar.OptionSetDescription("uploading"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionEnableColorCodes(f.IO.ColorEnabled()),
	)
}

// DeployResult is what deploy prints with -o json. Upload is nil in a dry run.
type DeployResult struct {
	DryRun bool   `json:"dry_run,omitempty"`
	AppID  string `json:"app_id"`
	Kind   string `json:"kind"`
	Chan   string `json:"channel"`
	Vers   string `json:"version"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	File   string `json:"file,omitempty"`
	// Encryption is set for an encrypted web bundle; SHA256 and Size are
	// then those of the encrypted file.
	Encryption *ota.BundleEncryption `json:"encryption,omitempty"`
	// Signature is the base64 signature of the zip for
	// @capawesome/capacitor-live-update, when signed; SignKeyID names the
	// key (this deploy's; empty when the server kept an earlier one).
	Signature string `json:"signature,omitempty"`
	SignKeyID string `json:"sign_key_id,omitempty"`
	// Delta is set for a delta release.
	Delta  *DeltaSummary     `json:"delta,omitempty"`
	Upload *ota.UploadResult `json:"upload,omitempty"`
}

// printDeploy reports a deploy (or a dry run) on stdout.
func printDeploy(f *Factory, r DeployResult) error {
	// Warnings go to stderr in both forms: -o json has them in
	// upload.warnings too.
	if r.Upload != nil {
		defer func() {
			for _, w := range r.Upload.Warnings {
				fmt.Fprintf(f.IO.ErrOut, "warning: %s\n", w)
			}
		}()
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, r)
	}
	var buf bytes.Buffer
	tw := newTable(&buf)
	fmt.Fprintf(tw, "app:\t%s\n", r.AppID)
	fmt.Fprintf(tw, "channel:\t%s\n", r.Chan)
	fmt.Fprintf(tw, "version:\t%s\n", r.Vers)
	fmt.Fprintf(tw, "checksum:\t%s\n", r.SHA256)
	fmt.Fprintf(tw, "size:\t%s (%d bytes)\n", humanBytes(r.Size), r.Size)
	if r.Encryption != nil {
		fmt.Fprintf(tw, "encrypted:\tkey id %s\n", r.Encryption.KeyID)
	}
	switch {
	case r.SignKeyID != "" && r.Delta != nil && r.Delta.Signed > 0:
		fmt.Fprintf(tw, "signed:\tkey %s (the zip, %d files and their manifest)\n", r.SignKeyID, r.Delta.Signed)
	case r.SignKeyID != "":
		fmt.Fprintf(tw, "signed:\tkey %s\n", r.SignKeyID)
	case r.Signature != "":
		fmt.Fprintf(tw, "signed:\tby an earlier upload of the same bytes\n")
	}
	if d := r.Delta; d != nil && r.DryRun {
		fmt.Fprintf(tw, "delta:\t%d files\n", d.Files)
	} else if d != nil {
		fmt.Fprintf(tw, "delta:\t%d files, %d uploaded (%s), %d already stored\n", d.Files, d.Uploaded, humanBytes(d.UploadedBytes), d.Reused)
	}
	if r.Upload != nil {
		fmt.Fprintf(tw, "previous:\t%s\n", orDash(r.Upload.Previous))
		fmt.Fprintf(tw, "url:\t%s\n", orDash(r.Upload.Bundle.URL))
	} else {
		fmt.Fprintf(tw, "file:\t%s\n", r.File)
	}
	_ = tw.Flush()
	if _, err := f.IO.Out.Write(buf.Bytes()); err != nil {
		return err
	}
	switch {
	case r.DryRun:
		fmt.Fprintf(f.IO.ErrOut, "Dry run: nothing uploaded; the %s is kept at %s\n", r.Kind, r.File)
	case r.Upload != nil && !r.Upload.Created:
		fmt.Fprintf(f.IO.ErrOut, "%s %s was already uploaded with the same bytes; %s serves it\n", r.AppID, r.Vers, r.Chan)
	default:
		fmt.Fprintf(f.IO.ErrOut, "Deployed %s %s to %s\n", r.AppID, r.Vers, r.Chan)
	}
	return nil
}
