package cli

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/pkg/ota"
)

// Bundle signing for @capawesome/capacitor-live-update: apps whose
// LiveUpdate config has a publicKey install only bundles with a
// SHA256withRSA signature of the zip (docs/protocol-capawesome.md §5).
// otactl signs with the team's private key, which never leaves the
// machine; the signature is uploaded with the bundle.

const signKeyUsage = "RSA private key (PEM) to sign the bundle with, for apps whose LiveUpdate config (@capawesome/capacitor-live-update) has a publicKey (setting sign_key, env OTACTL_SIGN_KEY)"

// signingKey is a loaded signing key and how to name it to people.
type signingKey struct {
	priv *rsa.PrivateKey
	path string
	// id is the first 16 hex digits of the SHA-256 of the public key's
	// DER, the same on every machine.
	id string
}

// loadSignKey reads the private key at path (already absolute or
// relative to the working directory). A key others may read is used, with
// a warning: CI systems often mount secrets 0644.
func loadSignKey(f *Factory, path string) (*signingKey, error) {
	path = resolve(f.WorkDir, path)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if block, _ := pem.Decode(b); block != nil && strings.HasSuffix(block.Type, "PUBLIC KEY") {
		return nil, fmt.Errorf("signing key %s is the public key, which belongs in the publicKey of the app's LiveUpdate config; pass the private key (otactl key create --for capawesome writes FILE and FILE.pub)", path)
	}
	priv, err := bundle.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(f.IO.ErrOut, "warning: signing key %s can be read by other users (mode %04o); chmod 600 %s\n",
			path, fi.Mode().Perm(), path)
	}
	if bits := priv.N.BitLen(); bits != bundle.SignKeyBits {
		return nil, flagErrorf("signing key %s is a %d-bit key; the plugin's iOS side reads %d-bit RSA keys only (otactl key create --for capawesome makes one)",
			path, bits, bundle.SignKeyBits)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	sum := sha256.Sum256(der)
	return &signingKey{priv: priv, path: path, id: hex.EncodeToString(sum[:8])}, nil
}

// signZip signs the file at path and proves the signature verifies with
// the public key alone, as a device would check it.
func (k *signingKey) signZip(path string) (string, error) {
	sig, err := bundle.SignFile(path, k.priv)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("check signature of %s: %w", path, err)
	}
	if err := bundle.Verify(bytes.NewReader(b), &k.priv.PublicKey, sig); err != nil {
		return "", fmt.Errorf("check signature of %s: %w", path, err)
	}
	return sig, nil
}

// deltaSignatures are the signatures a signed delta release carries for
// @capawesome/capacitor-live-update manifest bundles: one per file of the
// web dir, and one of the manifest file otad serves for them
// (ota.CapawesomeManifest), so a device with the publicKey verifies each
// download of the release.
type deltaSignatures struct {
	files    []string // by index of the scanned files
	manifest string
}

// signDelta signs every scanned file, several at a time, and the manifest
// file of their list, proving each signature with the public key alone.
func (k *signingKey) signDelta(ctx context.Context, files []delta.File) (deltaSignatures, error) {
	sigs := deltaSignatures{files: make([]string, len(files))}
	err := delta.Parallel(ctx, len(files), 0, func(i int) error {
		f := files[i]
		b, err := os.ReadFile(f.Disk)
		if err != nil {
			return fmt.Errorf("sign %s: %w", f.Disk, err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != f.SHA256 {
			return fmt.Errorf("%s changed while it was being deployed; run the deploy again", f.Disk)
		}
		sig, err := k.sign(b)
		if err != nil {
			return fmt.Errorf("sign %s: %w", f.Disk, err)
		}
		sigs.files[i] = sig
		return nil
	})
	if err != nil {
		return sigs, err
	}
	list := make([]ota.ManifestFile, len(files))
	for i, f := range files {
		list[i] = ota.ManifestFile{Path: f.Path, SHA256: f.SHA256, Size: f.Size}
	}
	if sigs.manifest, err = k.sign(ota.CapawesomeManifest(list)); err != nil {
		return sigs, fmt.Errorf("sign the manifest file: %w", err)
	}
	return sigs, nil
}

// sign signs b and checks the signature with the public key.
func (k *signingKey) sign(b []byte) (string, error) {
	sig, err := bundle.Sign(bytes.NewReader(b), k.priv)
	if err != nil {
		return "", err
	}
	if err := bundle.Verify(bytes.NewReader(b), &k.priv.PublicKey, sig); err != nil {
		return "", fmt.Errorf("check signature: %w", err)
	}
	return sig, nil
}

// apply puts the file signatures into manifest, the release's manifest
// in the order of the scanned files.
func (s deltaSignatures) apply(manifest []ota.ManifestFile) {
	for i := range manifest {
		if i < len(s.files) {
			manifest[i].Signature = s.files[i]
		}
	}
}
