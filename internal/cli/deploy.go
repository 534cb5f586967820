package cli

import (
	"bytes"
	"context"
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

// buildWeb runs the web build and npx cap sync (with syncArgs, e.g.
// "android") as b says.
func buildWeb(ctx context.Context, f *Factory, p *capacitor.Project, b buildFlags, syncArgs ...string) error {
	if b.SkipBuild {
		return nil
	}
	switch {
	case b.BuildCmd != "":
		if err := runStep(ctx, f, "build", p.Dir, b.BuildCmd, "sh", "-c", b.BuildCmd); err != nil {
			return err
		}
	default:
		script := capacitor.BuildScript(p)
		if script == "" {
			return flagErrorf(`package.json in %s has no "generate" or "build" script: add one, pass --build-cmd, or use --skip-build`, p.Dir)
		}
		if err := runStep(ctx, f, "build", p.Dir, "npm run "+script, "npm", "run", script); err != nil {
			return err
		}
	}
	if b.NoSync {
		return nil
	}
	args := append([]string{"cap", "sync"}, syncArgs...)
	return runStep(ctx, f, "sync", p.Dir, "npx "+strings.Join(args, " "), "npx", args...)
}

// runStep runs one child process with its output streaming through to the
// user; with -o json its stdout goes to stderr so stdout stays JSON.
func runStep(ctx context.Context, f *Factory, step, dir, display, name string, args ...string) error {
	_, err := runStepCapture(ctx, f, step, dir, display, name, args...)
	return err
}

// runStepCapture is runStep that also returns the tail of the child's
// stderr, for recognising well-known failures.
func runStepCapture(ctx context.Context, f *Factory, step, dir, display, name string, args ...string) (string, error) {
	fmt.Fprintf(f.IO.ErrOut, "==> %s\n", display)
	stdout := f.IO.Out
	if f.JSON() {
		stdout = f.IO.ErrOut
	}
	tail := &tailBuffer{max: 8 << 10}
	err := f.Runner.Run(ctx, Cmd{
		Name: name, Args: args, Dir: dir,
		Stdout: stdout, Stderr: io.MultiWriter(f.IO.ErrOut, tail),
	})
	if err != nil {
		if ctx.Err() != nil {
			return tail.String(), fmt.Errorf("%s interrupted: %w", step, ctx.Err())
		}
		return tail.String(), &StepError{Step: step, Command: display, Status: exitStatus(err), Err: err}
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
	Signature string            `json:"signature,omitempty"`
	SignKeyID string            `json:"sign_key_id,omitempty"`
	Upload    *ota.UploadResult `json:"upload,omitempty"`
}

// printDeploy reports a deploy (or a dry run) on stdout.
func printDeploy(f *Factory, r DeployResult) error {
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
	case r.SignKeyID != "":
		fmt.Fprintf(tw, "signed:\tkey %s\n", r.SignKeyID)
	case r.Signature != "":
		fmt.Fprintf(tw, "signed:\tby an earlier upload of the same bytes\n")
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
