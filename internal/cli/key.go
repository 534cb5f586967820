package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/internal/bundle"
)

// NewCmdKey builds `otactl key` and its subcommands.
func NewCmdKey(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key <command>",
		Short: "Create the key pair bundles are signed with",
		Long: `Apps using @capawesome/capacitor-live-update with a publicKey in their
LiveUpdate config install only bundles signed with the matching private key.
otactl key create makes the pair; otactl deploy web --sign-key (or the
sign_key setting) signs with it.`,
		Example: `  otactl key create
  otactl key create --out keys/live-update.pem`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(NewCmdKeyCreate(f, nil))
	return cmd
}

// KeyCreateOptions are the inputs of otactl key create.
type KeyCreateOptions struct {
	F     *Factory
	Out   string
	Force bool
}

// KeyCreateResult is what otactl key create prints with -o json.
type KeyCreateResult struct {
	PrivateKey string `json:"private_key"`
	PublicKey  string `json:"public_key"`
	// ConfigPublicKey is the public key on one line, for the publicKey of
	// the LiveUpdate config in capacitor.config.json.
	ConfigPublicKey string `json:"config_public_key"`
}

// NewCmdKeyCreate builds `otactl key create`.
func NewCmdKeyCreate(f *Factory, runF func(*KeyCreateOptions) error) *cobra.Command {
	opts := &KeyCreateOptions{F: f}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an RSA key pair for signing bundles",
		Long: `Create a 2048-bit RSA key pair for @capawesome/capacitor-live-update:

  FILE       the private key (PKCS#8 PEM), mode 0600: keep it secret and out
             of version control, give it to CI as a secret file
  FILE.pub   the public key (SubjectPublicKeyInfo PEM)

and print the public key on one line, as the publicKey of the app's
LiveUpdate config takes it. Then point otactl at the private key with
sign_key in otactl.yaml (a path relative to that file), OTACTL_SIGN_KEY, or
otactl deploy web --sign-key. An existing FILE is not overwritten unless
--force is given. The key never leaves this machine: otactl uploads
signatures only.`,
		Example: `  otactl key create --out ~/.config/otactl/live-update.pem
  echo "sign_key: keys/live-update.pem" >> otactl.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return keyCreateRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Out, "out", "live-update-signing.pem", "file to write the private key to (the public key goes to FILE.pub)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace existing key files")
	return cmd
}

func keyCreateRun(opts *KeyCreateOptions) error {
	f := opts.F
	out := resolve(f.WorkDir, opts.Out)
	pubPath := out + ".pub"
	if !opts.Force {
		for _, p := range []string{out, pubPath} {
			if _, err := os.Stat(p); err == nil {
				return flagErrorf("%s exists; pass --force to replace it (devices configured with its public key would refuse bundles signed with a new one)", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("check %s: %w", p, err)
			}
		}
	}
	priv, err := bundle.GenerateSigningKey()
	if err != nil {
		return err
	}
	privPEM, err := bundle.PrivateKeyPEM(priv)
	if err != nil {
		return err
	}
	pubPEM, err := bundle.SigningPublicKeyPEM(&priv.PublicKey)
	if err != nil {
		return err
	}
	line, err := bundle.ConfigPublicKey(&priv.PublicKey)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(out, privPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(pubPath, pubPEM, 0o644); err != nil {
		return err
	}
	res := KeyCreateResult{PrivateKey: out, PublicKey: pubPath, ConfigPublicKey: line}
	if f.JSON() {
		return writeJSON(f.IO.Out, res)
	}
	fmt.Fprintf(f.IO.Out, "Private key: %s (mode 0600, keep it secret)\n", out)
	fmt.Fprintf(f.IO.Out, "Public key:  %s\n\n", pubPath)
	fmt.Fprintf(f.IO.Out, "In capacitor.config.json, plugins.LiveUpdate:\n  \"publicKey\": %q\n", line)
	fmt.Fprintf(f.IO.ErrOut, "Sign deploys with it: sign_key in otactl.yaml, OTACTL_SIGN_KEY, or otactl deploy web --sign-key %s\n", opts.Out)
	return nil
}

// writeFileAtomic writes b to path with mode perm through a temporary file
// in the same directory, so a crash leaves the old file or the new one,
// and a private key is never readable by others, even for a moment.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
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
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
