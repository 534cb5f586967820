package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/capacitor"
	"github.com/otaship/ota/internal/cli/config"
)

// DefaultSigningKeyFile is the private signing key's file name for
// @capawesome/capacitor-live-update.
const DefaultSigningKeyFile = "live-update-signing.pem"

// signingKeyCreateRun is otactl key create --for capawesome: the RSA pair
// @capawesome/capacitor-live-update verifies bundle signatures with.
func signingKeyCreateRun(ctx context.Context, opts *KeyCreateOptions) error {
	f := opts.F
	var p *capacitor.Project
	if pd := config.FindProjectDir(f.WorkDir); pd != "" {
		p, _ = capacitor.Load(ctx, pd)
	}
	out := opts.Out
	if out == "" {
		out = DefaultSigningKeyFile
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
				return flagErrorf("%s exists; pass --force to replace it (devices configured with its public key would refuse bundles signed with a new one)", path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("check %s: %w", path, err)
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
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := writeKeyFile(out, privPEM, 0o600, opts.Force); err != nil {
		return err
	}
	if err := writeKeyFile(pubOut, pubPEM, 0o644, opts.Force); err != nil {
		return err
	}
	res := KeyCreateResult{PrivateKeyFile: out, PublicKeyFile: pubOut, PublicKey: string(pubPEM), ConfigPublicKey: line}
	if f.JSON() {
		return writeJSON(f.IO.Out, res)
	}
	fmt.Fprintf(f.IO.Out, "Private key: %s (mode 0600, keep it secret)\n", out)
	fmt.Fprintf(f.IO.Out, "Public key:  %s\n\n", pubOut)
	fmt.Fprintf(f.IO.Out, "In capacitor.config.json, plugins.LiveUpdate:\n  \"publicKey\": %q\n", line)
	fmt.Fprintf(f.IO.ErrOut, "Sign deploys with it: sign_key in otactl.yaml, OTACTL_SIGN_KEY, or otactl deploy web --sign-key %s\n", opts.Out)
	if p != nil {
		if warn := gitignoreWarning(p.Dir, out); warn != "" {
			fmt.Fprintf(f.IO.ErrOut, "\nwarning: %s\n", warn)
		}
	}
	return nil
}
