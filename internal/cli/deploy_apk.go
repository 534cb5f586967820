package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/capacitor"
	"github.com/otaship/ota/pkg/ota"
)

// DefaultAndroidImage is the Docker image with the Android SDK that builds
// the APK, as the old build-apk.sh used.
const DefaultAndroidImage = "mingc/android-build-box"

// DeployAPKOptions are the inputs of otactl deploy apk.
type DeployAPKOptions struct {
	F *Factory
	buildFlags
	Version string
	Channel string
	Release bool
	Image   string
	// APK, when set, uploads this file instead of building one.
	APK    string
	Notes  string
	DryRun bool
}

// NewCmdDeployAPK builds `otactl deploy apk`.
func NewCmdDeployAPK(f *Factory, runF func(*DeployAPKOptions) error) *cobra.Command {
	opts := &DeployAPKOptions{F: f}
	cmd := &cobra.Command{
		Use:   "apk [VERSION]",
		Short: "Build the Android APK in Docker and upload it",
		Long: `Build the web app, sync it into android/ with "npx cap sync android", build
the APK with Gradle inside Docker (no local Android SDK needed):

  docker run --rm -v "<project>:/project" mingc/android-build-box \
    bash -c 'cd /project/android && ./gradlew :app:assembleDebug'

and upload the newest APK from android/app/build/outputs/apk/<debug|release>/
to the "apk" channel. --release builds with assembleRelease. --apk FILE
uploads an APK built elsewhere instead.

VERSION defaults to versionName in android/app/build.gradle; the web build
runs with OTA_VERSION=VERSION. The version, channel, login, the project's
installed packages (@capacitor/android among them) and Docker are checked
before the build starts.`,
		Example: `  otactl deploy apk
  otactl deploy apk 1.4.0 --release
  otactl deploy apk --skip-build --image mingc/android-build-box:1.28.0
  otactl deploy apk 1.4.0 --apk build/app-release.apk`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Version = args[0]
			}
			if opts.SkipBuild && (opts.BuildCmd != "" || opts.NoSync) {
				return flagErrorf("--skip-build cannot be combined with --build-cmd or --no-sync")
			}
			if opts.APK != "" && (opts.Release || opts.BuildCmd != "") {
				return flagErrorf("--apk uploads a finished APK; it cannot be combined with --release or --build-cmd")
			}
			if runF != nil {
				return runF(opts)
			}
			return deployAPKRun(cmd.Context(), opts)
		},
	}
	opts.buildFlags.register(cmd)
	cmd.Flags().StringVar(&opts.Channel, "channel", ota.APKChannel, "channel to upload to")
	cmd.Flags().BoolVar(&opts.Release, "release", false, "build with assembleRelease instead of assembleDebug")
	cmd.Flags().StringVar(&opts.Image, "image", DefaultAndroidImage, "Docker image with the Android SDK")
	cmd.Flags().StringVar(&opts.APK, "apk", "", "upload this APK instead of building one")
	cmd.Flags().StringVar(&opts.Notes, "notes", "", "release notes kept with the APK")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "do everything but the upload")
	return cmd
}

func deployAPKRun(ctx context.Context, opts *DeployAPKOptions) error {
	f := opts.F
	p, err := loadProject(ctx, f)
	if err != nil {
		return err
	}
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	app := cfg.AppID
	if app == "" {
		app = p.AppID
	}
	if opts.APK == "" {
		if err := checkAndroidFolder(p); err != nil {
			return err
		}
	}
	version, from := opts.Version, "VERSION"
	if version == "" {
		if version, err = capacitor.GradleVersionName(p.Dir); err != nil {
			return fmt.Errorf("no VERSION given: %w", err)
		}
		from = "versionName in android/app/build.gradle"
	}
	// Everything that can fail fast is checked before the web build, cap
	// sync and Gradle, which take minutes.
	if err := checkDeployVersion(version, ota.KindAPK, from); err != nil {
		return err
	}
	if err := checkChannelFlag(opts.Channel); err != nil {
		return err
	}
	var client *ota.Client
	if !opts.DryRun {
		if client, err = f.Client(true); err != nil {
			return err
		}
		if err := checkLogin(ctx, client); err != nil {
			return err
		}
	}
	if opts.APK == "" {
		if err := checkAndroidBuildable(f, p, opts.buildFlags); err != nil {
			return err
		}
	}

	apk := opts.APK
	if apk != "" {
		apk = resolve(f.WorkDir, apk)
	} else {
		if err := buildWeb(ctx, f, p, opts.buildFlags, version, "android"); err != nil {
			return err
		}
		if apk, err = buildAPK(ctx, f, p.Dir, opts.Image, opts.Release); err != nil {
			return err
		}
	}
	sha, size, err := bundle.HashFile(apk)
	if err != nil {
		return err
	}
	r := DeployResult{AppID: app, Kind: ota.KindAPK, Chan: opts.Channel, Vers: version, SHA256: sha, Size: size, File: apk}
	if opts.DryRun {
		r.DryRun = true
		return printDeploy(f, r)
	}
	// The APK's native side, so later web deploys can be checked against it.
	native, err := nativeFingerprint(p.Dir)
	if err != nil {
		fmt.Fprintf(f.IO.ErrOut, "warning: %v; web deploys cannot be checked against this APK\n", err)
	}
	res, err := uploadFile(ctx, f, client, ota.UploadRequest{
		AppID: app, Channel: opts.Channel, Version: version, Kind: ota.KindAPK, Checksum: sha,
		Notes: opts.Notes, Size: size, Native: native,
	}, apk)
	if err != nil {
		return err
	}
	r.File, r.Upload = "", &res
	if res.Channel != "" {
		r.Chan = res.Channel
	}
	return printDeploy(f, r)
}

// buildAPK runs Gradle in the Android build image and returns the newest
// APK it produced.
func buildAPK(ctx context.Context, f *Factory, projectDir, image string, release bool) (string, error) {
	const step = "APK build"
	task, variant := ":app:assembleDebug", "debug"
	if release {
		task, variant = ":app:assembleRelease", "release"
	}
	abs, err := filepath.Abs(projectDir)
	if err != nil {
		return "", fmt.Errorf("resolve project folder: %w", err)
	}
	script := "cd /project/android && ./gradlew " + task
	args := []string{"run", "--rm", "-v", abs + ":/project", image, "bash", "-c", script}
	display := fmt.Sprintf("docker run --rm -v %q %s bash -c '%s'", abs+":/project", image, script)
	stderr, err := runStepCapture(ctx, f, step, projectDir, display, nil, "docker", args...)
	if err != nil {
		var se *StepError
		if errors.As(err, &se) {
			se.Hint = dockerHint(stderr)
		}
		return "", err
	}

	outDir := filepath.Join(projectDir, "android", "app", "build", "outputs", "apk", variant)
	apk, err := newestAPK(outDir)
	if err != nil {
		return "", &StepError{Step: step, Command: display, Status: -1, Err: err,
			Hint: "check the Gradle output above; the app module must be named app"}
	}
	return apk, nil
}

// androidPlatform is the npm package of Capacitor's Android platform.
const androidPlatform = "@capacitor/android"

// checkAndroidFolder wants the android/ folder that npx cap add android
// makes, which needs the platform package installed first.
func checkAndroidFolder(p *capacitor.Project) error {
	if fi, err := os.Stat(filepath.Join(p.Dir, "android")); err == nil && fi.IsDir() {
		return nil
	}
	if !p.Installed(androidPlatform) {
		return flagErrorf("no android/ folder in %s, and %s is not installed: install it, then add the platform: npm install %s && npx cap add android",
			p.Dir, androidPlatform, androidPlatform)
	}
	return flagErrorf("no android/ folder in %s: add the platform first with: npx cap add android", p.Dir)
}

// checkAndroidBuildable fails before the web build when the APK cannot be
// built: the project's packages or the Android platform package not
// installed, or no Docker to run Gradle in.
func checkAndroidBuildable(f *Factory, p *capacitor.Project, b buildFlags) error {
	if err := checkBuildable(p, b); err != nil {
		return err
	}
	if !b.SkipBuild && !b.NoSync && !p.Installed(androidPlatform) {
		return &StepError{Step: "sync", NotStarted: true,
			Err:  fmt.Errorf("npx cap sync android needs %s, which is not installed in %s", androidPlatform, p.Dir),
			Hint: "install it: npm install " + androidPlatform}
	}
	if _, err := f.LookPath("docker"); err != nil {
		return &StepError{Step: "APK build", Command: "docker", Status: -1,
			Err:  errors.New("docker is not installed or not on PATH"),
			Hint: "install Docker (https://docs.docker.com/engine/install/), or build the APK elsewhere and upload it with --apk FILE"}
	}
	return nil
}

// dockerHint recognises why docker itself (not the build) failed.
func dockerHint(stderr string) string {
	switch {
	case strings.Contains(stderr, "Cannot connect to the Docker daemon"), strings.Contains(stderr, "Is the docker daemon running"):
		return "the Docker daemon is not running: start it (sudo systemctl start docker, or open Docker Desktop) and retry"
	case strings.Contains(stderr, "permission denied") && strings.Contains(stderr, "docker.sock"):
		return "no permission to use Docker: add your user to the docker group (sudo usermod -aG docker $USER) and log in again"
	case strings.Contains(stderr, "Unable to find image") && strings.Contains(stderr, "pull access denied"):
		return "the image could not be pulled: check --image and your registry login"
	}
	return ""
}

// newestAPK returns the most recently modified .apk in dir.
func newestAPK(dir string) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.apk"))
	var best string
	var bestTime int64
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if t := fi.ModTime().UnixNano(); best == "" || t > bestTime {
			best, bestTime = m, t
		}
	}
	if best == "" {
		return "", fmt.Errorf("the build finished but no APK was found in %s", dir)
	}
	return best, nil
}
