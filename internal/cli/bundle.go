package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/capacitor"
	"github.com/otaship/ota/internal/cli/config"
)

// NewCmdBundle builds `otactl bundle` and its subcommands.
func NewCmdBundle(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle <command>",
		Short: "Make and check bundle zips without uploading",
		Example: `  otactl bundle zip dist --out app.zip
  otactl bundle verify app.zip`,
		Args: noArgs,
		// A parent alone shows its help; with an unknown subcommand noArgs
		// has already failed with a usage error.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(NewCmdBundleZip(f, nil), NewCmdBundleVerify(f, nil))
	return cmd
}

// BundleZipOptions are the inputs of otactl bundle zip.
type BundleZipOptions struct {
	F           *Factory
	Dir         string
	Out         string
	NoCodeCheck bool
	// JSON is --json, -o json or OTACTL_OUTPUT=json.
	JSON bool
	// EncryptKey, when set, also writes the zip encrypted with that private
	// key, as @capgo/cli bundle encrypt does.
	EncryptKey string
}

// BundleZipResult is what `otactl bundle zip --json` prints; its keys are
// those of @capgo/cli's bundle zip --json.
type BundleZipResult struct {
	Filename string `json:"filename"`
	Checksum string `json:"checksum"`
	Size     int64  `json:"size"`
	Files    int    `json:"files"`
	// With --encrypt-key: the encrypted file and what devices need to
	// open it, named as @capgo/cli bundle encrypt --json names them.
	EncryptedFilename string `json:"encrypted_filename,omitempty"`
	EncodedChecksum   string `json:"encoded_checksum,omitempty"`
	IVSessionKey      string `json:"ivSessionKey,omitempty"`
	KeyID             string `json:"key_id,omitempty"`
}

// NewCmdBundleZip builds `otactl bundle zip`.
func NewCmdBundleZip(f *Factory, runF func(*BundleZipOptions) error) *cobra.Command {
	opts := &BundleZipOptions{F: f}
	var output string
	cmd := &cobra.Command{
		Use:   "zip [DIR]",
		Short: "Zip a web build reproducibly and print its SHA-256",
		Long: `Zip DIR (default: the project's webDir) with its contents at the zip root,
entries sorted and timestamps fixed, so the same files always give the same
bytes and the same SHA-256 on any machine. It prints the same lines as
"npx @capgo/cli bundle zip", so scripts that grep them keep working:

  Checksum SHA256: <hex>
  Saved to <file>

--out names the zip file. It defaults to <appId>_<version>.zip in a
Capacitor project (as @capgo/cli names it), else to the folder's name with
.zip, in the current directory, or beside DIR when the current directory
is inside it. -o is the output format, as in every otactl command:
"-o json" (or --json) prints the result as JSON; "-o FILE", the old
spelling of --out, still works and says so.

With --encrypt-key it also writes <file>_encrypted.zip, encrypted for apps
whose updater config has a publicKey, and prints what
"npx @capgo/cli bundle encrypt" prints:

  Encoded Checksum: <hex>
  ivSessionKey: <base64 iv>:<base64 key>
  Encrypted zip saved at <file>_encrypted.zip

Upload the encrypted file with session_key=<ivSessionKey>,
encrypted_checksum=<Encoded Checksum> and key_id (printed too); otactl
deploy web --encrypt-key does all of it.`,
		Example: `  otactl bundle zip
  otactl bundle zip dist --out /tmp/app.zip
  otactl bundle zip dist -o json
  CHECKSUM=$(otactl bundle zip | grep "Checksum SHA256" | awk '{print $NF}')
  otactl bundle zip --encrypt-key .capgo_key_v2`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			if cmd.Flags().Changed("output") {
				switch output {
				case config.OutputJSON, config.OutputTable:
					opts.JSON = opts.JSON || output == config.OutputJSON
				default:
					// -o FILE named the zip before -o meant the format
					// everywhere; scripts that use it keep working.
					if opts.Out != "" {
						return flagErrorf("--out %s and -o %s both name the zip file; use --out only", opts.Out, output)
					}
					fmt.Fprintf(f.IO.ErrOut, "warning: -o/--output FILE is deprecated for bundle zip: use --out %s (-o is the output format, table or json, in every otactl command)\n", output)
					opts.Out = output
				}
			} else if !opts.JSON {
				opts.JSON = f.JSON() // OTACTL_OUTPUT or the settings files
			}
			if runF != nil {
				return runF(opts)
			}
			return bundleZipRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Out, "out", "", "zip file to write (default <appId>_<version>.zip, or <DIR name>.zip outside a project)")
	// This -o shadows the global one to also take the old "-o FILE".
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: table or json (env OTACTL_OUTPUT); -o FILE is the deprecated spelling of --out FILE")
	cmd.Flags().BoolVar(&opts.NoCodeCheck, "no-code-check", false, "skip the index.html and notifyAppReady checks")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON (same as -o json; @capgo/cli's flag)")
	cmd.Flags().StringVar(&opts.EncryptKey, "encrypt-key", "", encryptKeyUsage)
	return cmd
}

func bundleZipRun(ctx context.Context, opts *BundleZipOptions) error {
	f := opts.F
	dir, out := opts.Dir, opts.Out
	var p *capacitor.Project
	if pd := config.FindProjectDir(f.WorkDir); pd != "" && (dir == "" || out == "") {
		var err error
		if p, err = capacitor.Load(ctx, pd); err != nil {
			return fmt.Errorf("read Capacitor project %s: %w", pd, err)
		}
	}
	if dir == "" {
		if p == nil {
			return flagErrorf("no DIR given and no Capacitor project here to take webDir from: otactl bundle zip DIR")
		}
		var err error
		if dir, err = p.WebPath(); err != nil {
			return err
		}
	}
	dir = resolve(f.WorkDir, dir)
	if out == "" {
		out = defaultZipPath(p, dir, f.WorkDir)
	}
	out = resolve(f.WorkDir, out)
	priv, err := loadEncryptKey(f, opts.EncryptKey)
	if err != nil {
		return err
	}
	if !opts.NoCodeCheck {
		if err := bundle.CheckWebDir(dir); err != nil {
			return err
		}
	}
	res, err := bundle.ZipFile(ctx, dir, out, bundle.ZipOptions{})
	if err != nil {
		return fmt.Errorf("zip %s: %w", dir, err)
	}
	zr := BundleZipResult{Filename: out, Checksum: res.SHA256, Size: res.Size, Files: res.Files}
	if priv != nil {
		e, err := encryptZip(out, res.SHA256, priv, nil)
		if err != nil {
			return err
		}
		zr.EncryptedFilename, zr.EncodedChecksum, zr.IVSessionKey, zr.KeyID = e.Path, e.Enc.Checksum, e.Enc.SessionKey, e.Enc.KeyID
	}
	if opts.JSON {
		return writeJSON(f.IO.Out, zr)
	}
	fmt.Fprintf(f.IO.Out, "Checksum SHA256: %s\n", res.SHA256)
	fmt.Fprintf(f.IO.Out, "Saved to %s\n", out)
	if zr.EncryptedFilename != "" {
		fmt.Fprintf(f.IO.Out, "Encoded Checksum: %s\n", zr.EncodedChecksum)
		fmt.Fprintf(f.IO.Out, "ivSessionKey: %s\n", zr.IVSessionKey)
		fmt.Fprintf(f.IO.Out, "Key ID: %s\n", zr.KeyID)
		fmt.Fprintf(f.IO.Out, "Encrypted zip saved at %s\n", zr.EncryptedFilename)
	}
	fmt.Fprintf(f.IO.ErrOut, "%d files, %s (%s uncompressed)\n", res.Files, humanBytes(res.Size), humanBytes(res.Uncompressed))
	return nil
}

// defaultZipPath is where bundle zip writes without --out: the name
// @capgo/cli gives it in a Capacitor project (<appId>_<version>.zip), else
// the zipped folder's name, in the working directory, or beside the folder
// when the working directory is inside it (a zip cannot hold itself).
func defaultZipPath(p *capacitor.Project, dir, workDir string) string {
	var name string
	switch {
	case p != nil && p.AppID != "" && p.PackageVersion != "":
		name = p.AppID + "_" + p.PackageVersion
	case p != nil && p.AppID != "":
		name = p.AppID
	default:
		name = filepath.Base(filepath.Clean(dir))
		if name == "." || name == ".." || name == string(filepath.Separator) || name == "" {
			name = "bundle"
		}
	}
	place := workDir
	if inside, err := pathInside(dir, workDir); err == nil && inside {
		place = filepath.Dir(filepath.Clean(dir))
	}
	return filepath.Join(place, name+".zip")
}

// resolve makes p absolute against dir (the factory's working directory,
// which tests set).
func resolve(dir, p string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// BundleVerifyOptions are the inputs of otactl bundle verify.
type BundleVerifyOptions struct {
	F    *Factory
	File string
}

// BundleReport is what `otactl bundle verify -o json` prints.
type BundleReport struct {
	File         string   `json:"file"`
	SHA256       string   `json:"sha256"`
	Size         int64    `json:"size"`
	Entries      int      `json:"entries"`
	Uncompressed int64    `json:"uncompressed"`
	Wrapper      string   `json:"wrapper,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
}

// NewCmdBundleVerify builds `otactl bundle verify`.
func NewCmdBundleVerify(f *Factory, runF func(*BundleVerifyOptions) error) *cobra.Command {
	opts := &BundleVerifyOptions{F: f}
	return &cobra.Command{
		Use:   "verify FILE",
		Short: "Check that the updater plugin would accept a zip",
		Long: `Check a bundle zip the way the updater plugin and otad do, without
unpacking it: index.html at the root (or in one wrapper folder), no absolute
or ../ paths, no backslashes, symlinks or duplicate names, and no zip bomb.
Exits non-zero and lists every problem when the zip would be refused.`,
		Example: `  otactl bundle verify com.example.app_1.2.0.zip`,
		Args:    exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.File = args[0]
			if runF != nil {
				return runF(opts)
			}
			return bundleVerifyRun(opts)
		},
	}
}

func bundleVerifyRun(opts *BundleVerifyOptions) error {
	f := opts.F
	path := resolve(f.WorkDir, opts.File)
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open bundle: %w", err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("open bundle: %w", err)
	}
	rep, err := bundle.Validate(file, fi.Size(), bundle.Limits{})
	if err != nil {
		return fmt.Errorf("%s would be refused: %w", opts.File, err)
	}
	sha, size, err := bundle.HashFile(path)
	if err != nil {
		return err
	}
	r := BundleReport{File: opts.File, SHA256: sha, Size: size, Entries: rep.Entries, Uncompressed: rep.Uncompressed,
		Wrapper: rep.Wrapper, Warnings: rep.Warnings}
	if f.JSON() {
		return writeJSON(f.IO.Out, r)
	}
	fmt.Fprintf(f.IO.Out, "%s: OK\n", opts.File)
	fmt.Fprintf(f.IO.Out, "Checksum SHA256: %s\n", sha)
	fmt.Fprintf(f.IO.Out, "%d entries, %s (%s uncompressed)\n", rep.Entries, humanBytes(size), humanBytes(rep.Uncompressed))
	if rep.Wrapper != "" {
		fmt.Fprintf(f.IO.Out, "index.html is in the wrapper folder %s/ (the plugin unwraps it)\n", rep.Wrapper)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(f.IO.ErrOut, "warning: %s\n", w)
	}
	return nil
}
