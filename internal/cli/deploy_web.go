package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/capacitor"
	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/pkg/ota"
)

// DeployWebOptions are the inputs of otactl deploy web.
type DeployWebOptions struct {
	F *Factory
	buildFlags
	Version     string
	Channel     string
	NoCodeCheck bool
	DryRun      bool
	Notes       string
	MinNative   string
	MaxNative   string
	Rollout     int
	Force       bool
	// EncryptKey is the private key file to encrypt the bundle with
	// (--encrypt-key, else OTACTL_ENCRYPT_KEY); empty uploads it plain.
	EncryptKey string
	// EncryptKeySet is true when --encrypt-key was given, even empty: it
	// then beats the environment.
	EncryptKeySet bool
	// SignKey is the private key file to sign the bundle with (--sign-key,
	// else the sign_key setting); empty uploads it unsigned.
	SignKey string
	// SignKeySet is true when --sign-key was given, even empty ("" turns
	// a configured key off).
	SignKeySet bool
	// Delta uploads a delta release (--delta, else the delta project
	// setting); DeltaSet is true when the flag was given.
	Delta    bool
	DeltaSet bool
}

// NewCmdDeployWeb builds `otactl deploy web`.
func NewCmdDeployWeb(f *Factory, runF func(*DeployWebOptions) error) *cobra.Command {
	opts := &DeployWebOptions{F: f}
	cmd := &cobra.Command{
		Use:   "web [VERSION]",
		Short: "Build, zip and upload a live-update bundle",
		Long: `Build the web app and upload it as a live-update bundle, in these steps:

  1. build: "npm run generate" when package.json has that script, else
     "npm run build"; --build-cmd runs another command through "sh -c"
  2. npx cap sync (skip with --no-sync; --skip-build skips steps 1 and 2)
  3. read appId and webDir from capacitor.config.*
  4. check that webDir has index.html at its root and calls notifyAppReady
     (skip with --no-code-check)
  5. zip webDir reproducibly and take its SHA-256
  6. upload it to the channel (default stable), which then serves it

VERSION defaults to the version in package.json. The build and npx cap sync
run with OTA_VERSION=VERSION in their environment, so an app can show the
version it was deployed as (and its bundle changes with it) when VERSION is
not package.json's; otactl warns then, since a build that ignores
OTA_VERSION makes the same bundle as before. Versions are immutable:
uploading an existing version with other bytes fails (exit code 4). A new
version whose bytes equal another version of the channel is uploaded with
a warning from otad: the build did not change.

The version, channel, encryption key, login and the project's installed
packages are checked before the build starts.

Before the upload, the project's native plugins and Capacitor version are
compared with those of the newest APK (otactl deploy apk records them): a
bundle that needs a native plugin the shipped APK lacks is refused, since
devices would break. --force uploads it anyway and the history says so.
--rollout PERCENT offers the bundle to that share of devices only; grow it
with otactl rollout.

--encrypt-key (or OTACTL_ENCRYPT_KEY) names the RSA private key of an app
whose updater config has a publicKey (otactl key create makes the pair):
the zip is then AES-encrypted and its checksum signed, as @capgo/cli
bundle encrypt does, and checked to decrypt before it is uploaded. Devices
with that public key only install encrypted bundles.

--sign-key (or the sign_key setting, or OTACTL_SIGN_KEY) names the RSA
private key of an app that uses @capawesome/capacitor-live-update with a
publicKey in its LiveUpdate config (otactl key create --for capawesome
makes the pair): the zip is signed (SHA256withRSA over its bytes), the
signature checked with the public key and uploaded with the bundle. The key itself is never sent.
Devices with that public key refuse unsigned bundles; devices of
@capgo/capacitor-updater ignore the signature, so one deploy serves both
plugins. Encrypted bundles are for @capgo/capacitor-updater only: a
configured sign_key is skipped with --encrypt-key, and the two flags
cannot be combined.

--delta (or "delta: true" in the project's otactl.yaml, or OTACTL_DELTA=1)
makes the release a delta release: besides the zip, every file of webDir is
stored on its own under its SHA-256, files of 8 KiB or more Brotli-compressed
when that is smaller, and devices whose plugin supports it download only the
files they do not already have: @capgo/capacitor-updater 5.10.0, 6.25.0,
7.0.38 or later, and @capawesome/capacitor-live-update 6.5.0 or later (as a
manifest bundle). Files the server holds from earlier releases are not
uploaded again. With --sign-key every file and the file list are signed too,
so devices with the publicKey verify each download. With --encrypt-key each
file is encrypted with the release's session key, and every file is
uploaded (the ciphertext differs per release).
--delta=false turns it off for one deploy. See docs/delta.md.`,
		Example: `  otactl deploy web
  otactl deploy web 1.2.0 --channel beta --notes "fix login"
  otactl deploy web --skip-build --dry-run
  otactl deploy web --build-cmd "vite build --mode production"
  otactl deploy web 1.3.0 --rollout 10 --min-native 1.4.0
  otactl deploy web --encrypt-key .capgo_key_v2
  otactl deploy web --sign-key keys/live-update.pem
  otactl deploy web 1.4.0 --delta`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Version = args[0]
			}
			if opts.Rollout < 0 || opts.Rollout > 100 {
				return flagErrorf("--rollout %d is not a percent from 1 to 100", opts.Rollout)
			}
			if opts.SkipBuild && (opts.BuildCmd != "" || opts.NoSync) {
				return flagErrorf("--skip-build cannot be combined with --build-cmd or --no-sync")
			}
			opts.EncryptKeySet = cmd.Flags().Changed("encrypt-key")
			opts.SignKeySet = cmd.Flags().Changed("sign-key")
			opts.DeltaSet = cmd.Flags().Changed("delta")
			if runF != nil {
				return runF(opts)
			}
			return deployWebRun(cmd.Context(), opts)
		},
	}
	opts.buildFlags.register(cmd)
	cmd.Flags().StringVar(&opts.Channel, "channel", ota.DefaultChannel, "channel to deploy to")
	_ = cmd.RegisterFlagCompletionFunc("channel", completeChannels(f, -1))
	cmd.Flags().BoolVar(&opts.NoCodeCheck, "no-code-check", false, "skip the index.html and notifyAppReady checks")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "do everything but the upload, and keep the zip")
	cmd.Flags().StringVar(&opts.Notes, "notes", "", "release notes kept with the bundle")
	cmd.Flags().StringVar(&opts.MinNative, "min-native", "", "lowest native app version (version_build) the bundle runs on")
	cmd.Flags().StringVar(&opts.MaxNative, "max-native", "", "highest native app version the bundle runs on")
	cmd.Flags().IntVar(&opts.Rollout, "rollout", 0, "offer the bundle to this percent of devices only (1-99; default all)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "upload even if the bundle needs native plugins the newest APK lacks")
	cmd.Flags().StringVar(&opts.EncryptKey, "encrypt-key", "", encryptKeyUsage+" (env "+encryptKeyEnv+")")
	cmd.Flags().StringVar(&opts.SignKey, "sign-key", "", signKeyUsage)
	cmd.Flags().BoolVar(&opts.Delta, "delta", false, `upload a delta release: devices fetch only the files they lack (default: the "delta" setting)`)
	return cmd
}

func deployWebRun(ctx context.Context, opts *DeployWebOptions) error {
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
	version, from := opts.Version, "VERSION"
	if version == "" {
		if version, from = p.PackageVersion, "the version in package.json"; version == "" {
			return flagErrorf("no VERSION given and package.json in %s has no version", p.Dir)
		}
	}
	// Everything that can fail fast is checked before a build that may
	// take minutes: the version, the channel, the key, the login, the
	// project's packages.
	if err := checkDeployVersion(version, ota.KindWeb, from); err != nil {
		return err
	}
	if err := checkChannelFlag(opts.Channel); err != nil {
		return err
	}
	keyPath := opts.EncryptKey
	if !opts.EncryptKeySet {
		keyPath = f.Getenv(encryptKeyEnv)
	}
	priv, err := loadEncryptKey(f, keyPath)
	if err != nil {
		return err
	}
	signer, err := deploySigner(f, opts, cfg.SignKey, priv != nil)
	if err != nil {
		return err
	}
	useDelta := cfg.Delta
	if opts.DeltaSet {
		useDelta = opts.Delta
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
	if err := checkBuildable(p, opts.buildFlags); err != nil {
		return err
	}
	if opts.Version != "" && p.PackageVersion != "" && opts.Version != p.PackageVersion && !opts.SkipBuild {
		fmt.Fprintf(f.IO.ErrOut, "warning: deploying %s, but package.json says %s; the build gets %s=%s (an app that shows package.json's version will show %s)\n",
			opts.Version, p.PackageVersion, VersionEnv, opts.Version, p.PackageVersion)
	}

	if err := buildWeb(ctx, f, p, opts.buildFlags, version); err != nil {
		return err
	}
	// The build may have written or rewritten the config; read it again.
	if !opts.SkipBuild {
		dir := p.Dir
		if p, err = capacitor.Load(ctx, dir); err != nil {
			return fmt.Errorf("read Capacitor project %s after the build: %w", dir, err)
		}
	}
	webDir, err := p.WebPath()
	if err != nil {
		return err
	}
	if !opts.NoCodeCheck {
		if err := bundle.CheckWebDir(webDir); err != nil {
			return err
		}
	}

	tmp, err := os.MkdirTemp("", "otactl-deploy-")
	if err != nil {
		return fmt.Errorf("create a temporary folder for the zip: %w", err)
	}
	zipPath := filepath.Join(tmp, app+"_"+version+".zip")
	if !opts.DryRun {
		defer os.RemoveAll(tmp)
	}
	fmt.Fprintf(f.IO.ErrOut, "==> zipping %s\n", webDir)
	z, err := bundle.ZipFile(ctx, webDir, zipPath, bundle.ZipOptions{})
	if err != nil {
		return fmt.Errorf("zip %s: %w", webDir, err)
	}
	fmt.Fprintf(f.IO.ErrOut, "%d files, %s\n", z.Files, humanBytes(z.Size))

	r := DeployResult{AppID: app, Kind: ota.KindWeb, Chan: opts.Channel, Vers: version, SHA256: z.SHA256, Size: z.Size, File: zipPath}
	upload := ota.UploadRequest{
		AppID: app, Channel: opts.Channel, Version: version, Kind: ota.KindWeb, Checksum: z.SHA256,
		Notes: opts.Notes, MinNative: opts.MinNative, MaxNative: opts.MaxNative, Size: z.Size,
		Rollout: opts.Rollout,
	}
	var files []delta.File
	if useDelta {
		if files, err = delta.Scan(ctx, webDir); err != nil {
			return fmt.Errorf("list the files of %s: %w", webDir, err)
		}
		r.Delta = &DeltaSummary{Files: len(files)}
	}
	var sess *bundle.Session
	if priv != nil {
		fmt.Fprintf(f.IO.ErrOut, "==> encrypting for key id %s\n", bundle.KeyID(&priv.PublicKey))
		if useDelta {
			// One session for the release: the zip and every file.
			if sess, err = bundle.NewSession(priv); err != nil {
				return err
			}
		}
		e, err := encryptZip(zipPath, z.SHA256, priv, sess)
		if err != nil {
			return err
		}
		// What is uploaded and stored is the encrypted file.
		r.SHA256, r.Size, r.File, r.Encryption = e.SHA256, e.Size, e.Path, e.wire()
		upload.Checksum, upload.Size, upload.Encryption = e.SHA256, e.Size, e.wire()
		zipPath = e.Path
	}
	var deltaSigs *deltaSignatures
	if signer != nil {
		fmt.Fprintf(f.IO.ErrOut, "==> signing with key %s (%s)\n", signer.id, signer.path)
		sig, err := signer.signZip(zipPath)
		if err != nil {
			return err
		}
		r.Signature, r.SignKeyID, upload.Signature = sig, signer.id, sig
		if useDelta {
			// Devices with the publicKey then get the release as a
			// manifest bundle, verifying every file and the manifest.
			fmt.Fprintf(f.IO.ErrOut, "==> signing the %d files for @capawesome/capacitor-live-update manifest bundles\n", len(files))
			sigs, err := signer.signDelta(ctx, files)
			if err != nil {
				return err
			}
			deltaSigs, upload.ManifestSignature, r.Delta.Signed = &sigs, sigs.manifest, len(files)
		}
	}
	if opts.DryRun {
		r.DryRun = true
		return printDeploy(f, r)
	}
	native, forced, err := checkNative(ctx, f, client, app, p.Dir, opts.Force)
	if err != nil {
		return err
	}
	upload.Native, upload.Forced = native, forced
	if useDelta {
		if upload.Manifest, err = uploadDeltaFiles(ctx, f, client, app, files, sess, r.Delta); err != nil {
			return err
		}
		if deltaSigs != nil {
			deltaSigs.apply(upload.Manifest)
		}
	}
	res, err := uploadFile(ctx, f, client, upload, zipPath)
	var ae *ota.APIError
	if useDelta && errors.As(err, &ae) && ae.Code == ota.ErrCodeMissingFiles {
		// The server forgot files it said it had (it collects unused
		// ones at start): send what it lacks now, once more.
		fmt.Fprintln(f.IO.ErrOut, "the server lacks files it had a moment ago; uploading them again")
		if upload.Manifest, err = uploadDeltaFiles(ctx, f, client, app, files, sess, r.Delta); err != nil {
			return err
		}
		if deltaSigs != nil {
			deltaSigs.apply(upload.Manifest)
		}
		res, err = uploadFile(ctx, f, client, upload, zipPath)
	}
	if err != nil {
		return err
	}
	r.File, r.Upload = "", &res
	if res.Channel != "" {
		r.Chan = res.Channel
	}
	if s := res.Bundle.Signature; upload.Signature == "" && s != "" {
		r.Signature = s // signed before, kept by the server
	}
	return printDeploy(f, r)
}

// deploySigner loads the signing key of a deploy: --sign-key, else the
// sign_key setting. Encryption and signing exclude each other: an
// encrypted bundle only serves @capgo/capacitor-updater, which does not
// look at signatures.
func deploySigner(f *Factory, opts *DeployWebOptions, configured string, encrypting bool) (*signingKey, error) {
	path := configured
	if opts.SignKeySet {
		path = opts.SignKey
	}
	switch {
	case path == "":
		return nil, nil
	case encrypting && opts.SignKeySet:
		return nil, flagErrorf("--sign-key and --encrypt-key cannot be combined: encrypted bundles are for @capgo/capacitor-updater, signed ones for @capawesome/capacitor-live-update")
	case encrypting:
		fmt.Fprintf(f.IO.ErrOut, "note: not signing with %s: an encrypted bundle only serves @capgo/capacitor-updater devices\n", path)
		return nil, nil
	}
	return loadSignKey(f, path)
}

// DeltaSummary is what deploy web --delta did with the files, in its -o
// json output.
type DeltaSummary struct {
	// Files is the number of files of the release; Uploaded the file forms
	// sent and UploadedBytes their size; Reused the files the server held.
	Files         int   `json:"files"`
	Uploaded      int   `json:"uploaded"`
	UploadedBytes int64 `json:"uploaded_bytes"`
	Reused        int   `json:"reused"`
	// Signed is the number of files signed for
	// @capawesome/capacitor-live-update manifest bundles (--sign-key).
	Signed int `json:"signed,omitempty"`
}

// uploadDeltaFiles stores the files of a delta release the server lacks,
// with one progress bar on a terminal, and returns the manifest.
func uploadDeltaFiles(ctx context.Context, f *Factory, client *ota.Client, app string, files []delta.File, sess *bundle.Session, sum *DeltaSummary) ([]ota.ManifestFile, error) {
	var total int64
	for _, file := range files {
		total += file.Size
	}
	fmt.Fprintf(f.IO.ErrOut, "==> delta release: uploading what the server lacks of %d files (%s)\n", len(files), humanBytes(total))
	o := delta.UploadOptions{Client: client, AppID: app, Files: files, Session: sess}
	if f.IO.IsStderrTTY() {
		bar := newProgressBar(f, total)
		bar.Describe("files")
		o.Progress = func(done, _ int64) { _ = bar.Set64(done) }
		defer func() { _ = bar.Finish(); fmt.Fprintln(f.IO.ErrOut) }()
	}
	up, err := delta.UploadFiles(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("upload the files of the delta release to %s: %w", client.BaseURL, err)
	}
	sum.Uploaded, sum.UploadedBytes, sum.Reused = up.Uploaded, up.UploadedBytes, up.Reused
	fmt.Fprintf(f.IO.ErrOut, "%d file forms uploaded (%s); %d files were on the server already\n", up.Uploaded, humanBytes(up.UploadedBytes), up.Reused)
	return up.Manifest, nil
}
