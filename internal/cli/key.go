package cli

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/capacitor"
	"github.com/otaship/ota/internal/cli/config"
)

// DefaultKeyFile is the private key's file name, the one @capgo/cli key
// create writes, so either tool finds the other's key.
const DefaultKeyFile = ".capgo_key_v2"

// NewCmdKey builds `otactl key` and its subcommands.
func NewCmdKey(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key <command>",
		Short: "Make the key pair of encrypted or signed bundles",
		Long: `Encrypted bundles (@capgo/capacitor-updater, protocol "encryption v2") are
made with an RSA private key that stays with whoever deploys, and checked on
the device with the public key built into the app. otactl key create makes
the pair; otactl deploy web --encrypt-key FILE encrypts with it.

Signed bundles (@capawesome/capacitor-live-update with a publicKey in its
LiveUpdate config) need a pair of their own: otactl key create --for
capawesome makes it; otactl deploy web --sign-key FILE (or the sign_key
setting) signs with it.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(NewCmdKeyCreate(f, nil))
	return cmd
}

// Plugins otactl key create makes keys for.
const (
	keyForCapgo      = "capgo"
	keyForCapawesome = "capawesome"
)

// KeyCreateOptions are the inputs of otactl key create.
type KeyCreateOptions struct {
	F     *Factory
	Out   string
	Force bool
	// For is the plugin the key is for: capgo (encryption) or capawesome
	// (signing).
	For string
}

// KeyCreateResult is what `otactl key create -o json` prints. Nothing in
// it is secret: the private key stays in its file.
type KeyCreateResult struct {
	PrivateKeyFile string `json:"private_key_file"`
	PublicKeyFile  string `json:"public_key_file"`
	// PublicKey is the PEM the app's capacitor config takes as publicKey.
	PublicKey string `json:"public_key"`
	// KeyID is what devices with this public key send as key_id (capgo).
	KeyID string `json:"key_id,omitempty"`
	// ConfigPublicKey is the public key on one line, for the publicKey of
	// the LiveUpdate config (capawesome).
	ConfigPublicKey string `json:"config_public_key,omitempty"`
}

// NewCmdKeyCreate builds `otactl key create`.
func NewCmdKeyCreate(f *Factory, runF func(*KeyCreateOptions) error) *cobra.Command {
	opts := &KeyCreateOptions{F: f}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create the RSA key pair for encrypted bundles",
		Long: `Create a 2048-bit RSA key pair, the only size the updater plugin accepts:

  .capgo_key_v2      the private key (PKCS#1 PEM), mode 0600. It encrypts
                     bundles (otactl deploy web --encrypt-key .capgo_key_v2)
                     and never leaves your machine or CI: otactl never
                     uploads it. Keep it out of git and out of webDir.
  .capgo_key_v2.pub  the public key (-----BEGIN RSA PUBLIC KEY-----), which
                     goes into the app

The files are made in the Capacitor project's root (or the current
directory outside a project), with the names @capgo/cli uses; --out names
the private key file (the public key is FILE.pub). An existing key is never
replaced unless --force is given: bundles made with it would no longer
install on devices that have its public key.

It prints the publicKey entry for capacitor.config.json and the key id
(the first 20 characters of the public key's PEM body), which devices send
as key_id and otad stores with each encrypted bundle. Devices only accept
encrypted bundles once an app with the public key is installed.

With --for capawesome it makes the signing pair of
@capawesome/capacitor-live-update instead:

  live-update-signing.pem      the private key (PKCS#8 PEM), mode 0600: it
                               signs bundles (otactl deploy web --sign-key,
                               or sign_key in otactl.yaml) and is never
                               uploaded
  live-update-signing.pem.pub  the public key (SubjectPublicKeyInfo PEM)

and prints the public key on one line, as the publicKey of the app's
LiveUpdate config takes it.`,
		Example: `  otactl key create
  otactl key create --out ~/secrets/myapp_key
  otactl key create -o json | jq -r .key_id
  otactl key create --for capawesome --out keys/live-update.pem`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return keyCreateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Out, "out", "", "private key file to write; the public key is FILE.pub (default "+DefaultKeyFile+" in the project root, "+DefaultSigningKeyFile+" with --for capawesome)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing key pair")
	cmd.Flags().StringVar(&opts.For, "for", keyForCapgo, "the plugin the key is for: capgo (encrypted bundles) or capawesome (signed bundles)")
	_ = cmd.RegisterFlagCompletionFunc("for", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{keyForCapgo + "\tencrypted bundles for @capgo/capacitor-updater", keyForCapawesome + "\tsigned bundles for @capawesome/capacitor-live-update"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func keyCreateRun(ctx context.Context, opts *KeyCreateOptions) error {
	f := opts.F
	switch opts.For {
	case keyForCapgo, "":
	case keyForCapawesome:
		return signingKeyCreateRun(ctx, opts)
	default:
		return flagErrorf("--for %q: want %s (encrypted bundles) or %s (signed bundles)", opts.For, keyForCapgo, keyForCapawesome)
	}
	var p *capacitor.Project
	if pd := config.FindProjectDir(f.WorkDir); pd != "" {
		// Only the folder and webDir are needed: reading a JSON config
		// needs no Node, and a failed read just means no project checks.
		p, _ = capacitor.Load(ctx, pd)
	}
	out := opts.Out
	if out == "" {
		dir := f.WorkDir
		if p != nil {
			dir = p.Dir
		}
		out = filepath.Join(dir, DefaultKeyFile)
	}
	out = resolve(f.WorkDir, out)
	pubOut := out + ".pub"
	if p != nil {
		web := p.WebDir
		if !filepath.IsAbs(web) {
			web = filepath.Join(p.Dir, filepath.FromSlash(web))
		}
		if inside, _ := pathInside(web, out); inside {
			return flagErrorf("%s is inside webDir %s, which is zipped and sent to every device: put the private key elsewhere (--out)", out, web)
		}
	}
	if !opts.Force {
		for _, path := range []string{out, pubOut} {
			if _, err := os.Lstat(path); err == nil {
				return flagErrorf("%s exists already; bundles encrypted with that key only install with its public key: keep it, or pass --force to replace the pair", path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("check %s: %w", path, err)
			}
		}
	}

	priv, err := rsa.GenerateKey(rand.Reader, bundle.DeviceKeyBits)
	if err != nil {
		return fmt.Errorf("generate the RSA key: %w", err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})
	pubPEM := bundle.PublicKeyPEM(&priv.PublicKey)
	if err := writeKeyFile(out, privPEM, 0o600, opts.Force); err != nil {
		return err
	}
	if err := writeKeyFile(pubOut, pubPEM, 0o644, opts.Force); err != nil {
		return err
	}
	res := KeyCreateResult{PrivateKeyFile: out, PublicKeyFile: pubOut, PublicKey: string(pubPEM), KeyID: bundle.KeyID(&priv.PublicKey)}
	if f.JSON() {
		return writeJSON(f.IO.Out, res)
	}
	snippet, _ := json.Marshal(res.PublicKey)
	fmt.Fprintf(f.IO.ErrOut, "Created an RSA-%d key pair for encrypted bundles:\n", bundle.DeviceKeyBits)
	fmt.Fprintf(f.IO.ErrOut, "  private key  %s (mode 0600: keep it secret; otactl never uploads it)\n", out)
	fmt.Fprintf(f.IO.ErrOut, "  public key   %s\n", pubOut)
	fmt.Fprintf(f.IO.Out, "key id: %s\n", res.KeyID)
	fmt.Fprintln(f.IO.ErrOut, "\nAdd the public key to capacitor.config.json, under plugins.CapacitorUpdater:")
	fmt.Fprintf(f.IO.Out, "\"publicKey\": %s\n", snippet)
	fmt.Fprintln(f.IO.ErrOut, "\nthen run npx cap sync and ship the app (the plugin reads the key from the")
	fmt.Fprintln(f.IO.ErrOut, "installed app, not from a live update), and deploy with:")
	fmt.Fprintf(f.IO.ErrOut, "  otactl deploy web --encrypt-key %s\n", out)
	if p != nil {
		if warn := gitignoreWarning(p.Dir, out); warn != "" {
			fmt.Fprintf(f.IO.ErrOut, "\nwarning: %s\n", warn)
		}
	}
	return nil
}

// writeKeyFile writes data to path with perm, whole or not at all. Without
// replace an existing file is an error, even one made meanwhile (the file
// is linked into place, which fails when the name exists).
func writeKeyFile(path string, data []byte, perm os.FileMode, replace bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once linked or renamed
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path)
	}
	if errors.Is(err, fs.ErrExist) {
		return flagErrorf("%s exists already: pass --force to replace it", path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// gitignoreWarning says to ignore the key file when it is in the project
// and the project's .gitignore does not name it.
func gitignoreWarning(projectDir, keyFile string) string {
	rel, err := filepath.Rel(projectDir, keyFile)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "" // outside the project
	}
	rel = filepath.ToSlash(rel)
	b, err := os.ReadFile(filepath.Join(projectDir, ".gitignore"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == rel || line == "/"+rel || line == filepath.Base(rel) || line == ".capgo_key*" || line == ".capgo_key_v2*" {
			return ""
		}
	}
	return fmt.Sprintf("%s is not in %s: add it, so the private key is never committed: echo %s >> .gitignore",
		rel, filepath.Join(projectDir, ".gitignore"), rel)
}

// pathInside reports whether path is dir or below it.
func pathInside(dir, path string) (bool, error) {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	if err != nil {
		return false, err
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)), nil
}
