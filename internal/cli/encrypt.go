package cli

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/pkg/ota"
)

// encryptKeyEnv is what --encrypt-key of otactl deploy web defaults to, so
// a CI job can keep the key path (or a mounted secret) out of the command.
const encryptKeyEnv = "OTACTL_ENCRYPT_KEY"

const encryptKeyUsage = "RSA private key (PEM) to encrypt the bundle with, for apps whose updater config has a publicKey"

// loadEncryptKey loads the private key at path (relative to the working
// directory); nil when path is empty.
func loadEncryptKey(f *Factory, path string) (*rsa.PrivateKey, error) {
	if path == "" {
		return nil, nil
	}
	priv, err := bundle.LoadPrivateKey(resolve(f.WorkDir, path))
	if err != nil {
		return nil, err
	}
	if bits := priv.N.BitLen(); bits != bundle.DeviceKeyBits {
		return nil, flagErrorf("--encrypt-key %s is a %d-bit key; the updater plugin only accepts %d-bit RSA keys (otactl key create makes one)",
			path, bits, bundle.DeviceKeyBits)
	}
	return priv, nil
}

// encryptedFile is a zip encrypted for upload.
type encryptedFile struct {
	Path   string
	SHA256 string // of the encrypted bytes, which the server stores
	Size   int64
	Enc    bundle.Encrypted
}

// encryptZip encrypts zipPath to zipPath_encrypted.zip, the name
// @capgo/cli bundle encrypt uses, and proves the result opens: decrypted
// with the public key alone it must give back the zip whose SHA-256 is
// plainSHA, and the encrypted checksum must name that SHA-256. A device
// would otherwise find out, after the release.
// sess is the release's session (a delta release encrypts its files
// with it too); nil makes a fresh one.
func encryptZip(zipPath, plainSHA string, priv *rsa.PrivateKey, sess *bundle.Session) (encryptedFile, error) {
	out := zipPath + "_encrypted.zip"
	var enc bundle.Encrypted
	var err error
	if sess == nil {
		enc, err = bundle.EncryptBundle(zipPath, out, priv)
	} else {
		enc, err = sess.EncryptFile(zipPath, out)
	}
	if err != nil {
		return encryptedFile{}, err
	}
	r := encryptedFile{Path: out, Enc: enc}
	if r.SHA256, r.Size, err = bundle.HashFile(out); err != nil {
		return r, err
	}
	file, err := os.Open(out)
	if err != nil {
		return r, fmt.Errorf("check encrypted bundle: %w", err)
	}
	defer file.Close()
	h := sha256.New()
	if err := bundle.Decrypt(file, h, &priv.PublicKey, enc.SessionKey); err != nil {
		return r, fmt.Errorf("check encrypted bundle %s: %w", out, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != plainSHA {
		return r, fmt.Errorf("check encrypted bundle %s: it decrypts to sha256 %s, not the zip's %s", out, got, plainSHA)
	}
	if got, err := bundle.DecryptChecksum(&priv.PublicKey, enc.Checksum); err != nil || got != plainSHA {
		return r, fmt.Errorf("check encrypted bundle %s: the encrypted checksum does not name the zip's sha256 (%s, %v)", out, got, err)
	}
	return r, nil
}

// wire is the encryption as the upload sends it.
func (e encryptedFile) wire() *ota.BundleEncryption {
	return &ota.BundleEncryption{SessionKey: e.Enc.SessionKey, EncryptedChecksum: e.Enc.Checksum, KeyID: e.Enc.KeyID}
}
