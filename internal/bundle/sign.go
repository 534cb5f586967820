package bundle

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Signatures for @capawesome/capacitor-live-update
// (docs/protocol-capawesome.md §5). A device whose config has a publicKey
// verifies a SHA256withRSA (RSASSA-PKCS1-v1_5) signature over the bytes
// it downloaded, given as standard base64, and refuses a bundle without
// one. The signature covers the file, not its checksum, so it is made over
// exactly the bytes otad stores and serves.

// SignKeyBits is the RSA size otactl signs with: iOS builds the public key
// as a 2048-bit key.
const SignKeyBits = 2048

// Bounds of an uploaded signature's decoded length: RSA-1024 to
// RSA-8192. Devices only check 2048-bit ones, but the server stores what
// the client signed; a mismatch is the client's to find.
const (
	minSignatureBytes = 128
	maxSignatureBytes = 1024
)

// MaxSignatureLen is the longest base64 signature otad accepts.
var MaxSignatureLen = base64.StdEncoding.EncodedLen(maxSignatureBytes)

// Sign returns the base64 SHA256withRSA signature of everything r yields.
func Sign(r io.Reader, priv *rsa.PrivateKey) (string, error) {
	if priv == nil {
		return "", errors.New("sign: no private key")
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("sign: read: %w", err)
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, h.Sum(nil))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// SignFile is Sign over the file at path.
func SignFile(path string, priv *rsa.PrivateKey) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", path, err)
	}
	defer f.Close()
	sig, err := Sign(f, priv)
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", path, err)
	}
	return sig, nil
}

// Verify checks sig over everything r yields as a device does: decode the
// base64, hash the bytes, verify with the public key.
func Verify(r io.Reader, pub *rsa.PublicKey, sig string) error {
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("verify: signature is not base64: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return fmt.Errorf("verify: read: %w", err)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h.Sum(nil), raw); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}

// CheckSignature validates an uploaded signature's form: standard base64
// with padding on one line (iOS decodes nothing else) of an RSA-sized
// value. It cannot check the key, which otad does not have.
func CheckSignature(sig string) error {
	if len(sig) > MaxSignatureLen {
		return fmt.Errorf("signature is %d characters long; an RSA signature in base64 has at most %d", len(sig), MaxSignatureLen)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil || strings.ContainsAny(sig, "\r\n") {
		return errors.New("signature must be the standard base64 (with = padding, on one line) of a SHA256withRSA signature, as otactl deploy web --sign-key or openssl dgst -sha256 -sign key.pem bundle.zip | base64 -w0 makes it")
	}
	if isHexString(sig) {
		// Valid base64 too, but what openssl dgst -hex prints.
		return errors.New("signature is hexadecimal; send it in standard base64 (openssl dgst -sha256 -sign key.pem bundle.zip | base64 -w0)")
	}
	if len(raw) < minSignatureBytes || len(raw) > maxSignatureBytes {
		return fmt.Errorf("signature decodes to %d bytes; an RSA signature has the size of its key (256 bytes for RSA-2048)", len(raw))
	}
	return nil
}

// SigningPublicKeyPEM is pub as the plugin's publicKey setting takes it:
// SubjectPublicKeyInfo, "-----BEGIN PUBLIC KEY-----", the markers both
// platforms strip before decoding.
func SigningPublicKeyPEM(pub *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ConfigPublicKey is the public key as one line for capacitor.config.json:
// the PEM with its line breaks removed, which both platforms accept since
// they strip the markers and newlines before decoding the base64.
func ConfigPublicKey(pub *rsa.PublicKey) (string, error) {
	p, err := SigningPublicKeyPEM(pub)
	if err != nil {
		return "", err
	}
	return strings.ReplaceAll(strings.TrimSpace(string(p)), "\n", ""), nil
}

// GenerateSigningKey makes a new RSA key for signing bundles.
func GenerateSigningKey() (*rsa.PrivateKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, SignKeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate a %d-bit RSA key: %w", SignKeyBits, err)
	}
	return k, nil
}

// PrivateKeyPEM encodes priv as PKCS#8 ("-----BEGIN PRIVATE KEY-----"),
// what openssl genpkey writes and LoadPrivateKey reads.
func PrivateKeyPEM(priv *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func isHexString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return s != ""
}
