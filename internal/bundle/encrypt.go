package bundle

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
)

// The encryption of protocol §6 ("encryption v2"), as @capgo/cli
// bundle encrypt does it: the zip is AES-128-CBC encrypted under a random
// key, and the key and the plaintext's SHA-256 are RSA "private-key
// encrypted" (PKCS#1 v1.5 type-1 padding over the raw bytes), so a device
// holding only the public key can recover both and knows that only the
// private key's holder made the bundle.

// DeviceKeyBits is the only RSA size the plugin accepts: it rejects an
// encrypted checksum that does not decode to exactly 256 bytes.
const DeviceKeyBits = 2048

// KeyIDLen is how many characters of the public key's PEM body the plugin
// sends as key_id (since 8.40.7; 4 before).
const KeyIDLen = 20

const aesKeyLen = 16 // AES-128, what the plugin decrypts

// Encrypted is what a device needs, besides the public key, to decrypt
// and verify an encrypted bundle. All three are safe to publish.
type Encrypted struct {
	// SessionKey is base64(IV) ":" base64(RSA-encrypted AES key), the
	// session_key of an update answer.
	SessionKey string
	// Checksum is the hex RSA-encrypted SHA-256 of the plaintext zip, the
	// checksum of an update answer (512 characters for RSA-2048).
	Checksum string
	// KeyID is the key_id devices configured with the matching public key
	// send.
	KeyID string
}

// EncryptBundle encrypts the zip at zipPath into outPath with a fresh
// session key. outPath is replaced only when the whole file was written.
func EncryptBundle(zipPath, outPath string, priv *rsa.PrivateKey) (Encrypted, error) {
	if err := checkDeviceKey(priv); err != nil {
		return Encrypted{}, fmt.Errorf("encrypt bundle: %w", err)
	}
	sess, err := NewSession(priv)
	if err != nil {
		return Encrypted{}, fmt.Errorf("encrypt bundle: %w", err)
	}
	return sess.EncryptFile(zipPath, outPath)
}

func checkDeviceKey(priv *rsa.PrivateKey) error {
	if priv == nil {
		return errors.New("no private key")
	}
	if bits := priv.N.BitLen(); bits != DeviceKeyBits {
		return fmt.Errorf("the key has %d bits, but the updater plugin only accepts %d-bit RSA keys; create one with otactl key create", bits, DeviceKeyBits)
	}
	return nil
}

// Session is one release's AES-128 key and IV. Devices get both in the
// answer's session_key and decrypt everything of the release with them:
// the zip, and every file of a delta release (protocol §2.6, §6). It is
// safe for concurrent use.
type Session struct {
	key, iv []byte
	priv    *rsa.PrivateKey
	// SessionKey is base64(IV) ":" base64(RSA-encrypted AES key).
	SessionKey string
	// KeyID is the key_id of devices with the matching public key.
	KeyID string
}

// NewSession makes a fresh random session for priv.
func NewSession(priv *rsa.PrivateKey) (*Session, error) {
	s := &Session{key: make([]byte, aesKeyLen), iv: make([]byte, aes.BlockSize), priv: priv}
	if _, err := rand.Read(s.key); err != nil {
		return nil, fmt.Errorf("make session key: %w", err)
	}
	if _, err := rand.Read(s.iv); err != nil {
		return nil, fmt.Errorf("make session key: %w", err)
	}
	// crypto.Hash(0) makes SignPKCS1v15 pad and encrypt the bytes as given,
	// which is Node's privateEncrypt, what the plugin undoes.
	encKey, err := rsa.SignPKCS1v15(nil, priv, crypto.Hash(0), s.key)
	if err != nil {
		return nil, fmt.Errorf("encrypt session key: %w", err)
	}
	s.SessionKey = base64.StdEncoding.EncodeToString(s.iv) + ":" + base64.StdEncoding.EncodeToString(encKey)
	s.KeyID = KeyID(&priv.PublicKey)
	return s, nil
}

// EncryptFile encrypts the file at inPath into outPath, replaced only
// when the whole file was written, and returns the session key, the
// encrypted checksum of the plaintext and the key id.
func (s *Session) EncryptFile(inPath, outPath string) (Encrypted, error) {
	in, err := os.Open(inPath)
	if err != nil {
		return Encrypted{}, fmt.Errorf("encrypt bundle: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(outPath), filepath.Base(outPath)+".*.tmp")
	if err != nil {
		return Encrypted{}, fmt.Errorf("encrypt bundle: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 64<<10)
	enc, err := s.Encrypt(bufio.NewReaderSize(in, 64<<10), w)
	if err != nil {
		return Encrypted{}, fmt.Errorf("encrypt %s: %w", inPath, err)
	}
	if err := w.Flush(); err != nil {
		return Encrypted{}, fmt.Errorf("write %s: %w", outPath, err)
	}
	if err := tmp.Close(); err != nil {
		return Encrypted{}, fmt.Errorf("write %s: %w", outPath, err)
	}
	if err := os.Rename(tmp.Name(), outPath); err != nil {
		return Encrypted{}, fmt.Errorf("encrypt bundle: %w", err)
	}
	done = true
	return enc, nil
}

// Encrypt streams plain through AES-128-CBC with PKCS#7 padding into w
// under a fresh random key and IV, and returns the session key, the
// encrypted checksum of plain and the key id of priv.
func Encrypt(plain io.Reader, w io.Writer, priv *rsa.PrivateKey) (Encrypted, error) {
	s, err := NewSession(priv)
	if err != nil {
		return Encrypted{}, err
	}
	return s.Encrypt(plain, w)
}

// Encrypt streams plain through AES-128-CBC with PKCS#7 padding into w
// under the session's key, and returns the session key, the encrypted
// checksum of plain and the key id.
func (s *Session) Encrypt(plain io.Reader, w io.Writer) (Encrypted, error) {
	digest, err := s.Seal(plain, w)
	if err != nil {
		return Encrypted{}, err
	}
	sum, err := s.SignChecksum(digest)
	if err != nil {
		return Encrypted{}, err
	}
	return Encrypted{SessionKey: s.SessionKey, Checksum: sum, KeyID: s.KeyID}, nil
}

// Seal streams plain through AES-128-CBC with PKCS#7 padding into w under
// the session's key and returns the SHA-256 digest of plain, without the
// RSA signature Encrypt adds (a few milliseconds each).
func (s *Session) Seal(plain io.Reader, w io.Writer) ([]byte, error) {
	block, err := aes.NewCipher(s.key)
	if err != nil {
		return nil, fmt.Errorf("make session key: %w", err)
	}
	cbc := cipher.NewCBCEncrypter(block, s.iv)
	h := sha256.New()
	buf := make([]byte, 64<<10) // a multiple of the block size
	for {
		n, err := io.ReadFull(plain, buf)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// Last, short chunk: PKCS#7 always pads, a whole block when the
			// length is a multiple of 16.
			h.Write(buf[:n])
			pad := aes.BlockSize - n%aes.BlockSize
			last := append(buf[:n], bytes.Repeat([]byte{byte(pad)}, pad)...)
			cbc.CryptBlocks(last, last)
			if _, err := w.Write(last); err != nil {
				return nil, fmt.Errorf("write encrypted bundle: %w", err)
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read bundle: %w", err)
		}
		h.Write(buf)
		cbc.CryptBlocks(buf, buf)
		if _, err := w.Write(buf); err != nil {
			return nil, fmt.Errorf("write encrypted bundle: %w", err)
		}
	}
	return h.Sum(nil), nil
}

// SignChecksum is the encrypted form of a raw SHA-256 digest devices
// verify: hex(RSA private-key encryption of the 32 bytes), the checksum
// of an encrypted zip and the file_hash of a file of an encrypted delta
// release.
func (s *Session) SignChecksum(digest []byte) (string, error) {
	sum, err := rsa.SignPKCS1v15(nil, s.priv, crypto.Hash(0), digest)
	if err != nil {
		return "", fmt.Errorf("encrypt checksum: %w", err)
	}
	return hex.EncodeToString(sum), nil
}

// KeyID is the key_id of a public key: the first 20 characters of the
// base64 body of its PKCS#1 PEM, as the plugin computes it from its
// publicKey setting.
func KeyID(pub *rsa.PublicKey) string {
	body := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(pub))
	return body[:min(KeyIDLen, len(body))]
}

// PublicKeyPEM is pub as the plugin's publicKey setting takes it:
// PKCS#1, "-----BEGIN RSA PUBLIC KEY-----". The plugin skips decryption
// for any other form.
func PublicKeyPEM(pub *rsa.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})
}

// LoadPrivateKey reads an RSA private key from a PEM file, PKCS#1
// ("RSA PRIVATE KEY", what @capgo/cli key create writes) or PKCS#8
// ("PRIVATE KEY", what openssl genpkey writes).
func LoadPrivateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read encryption key: %w", err)
	}
	priv, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("encryption key %s: %w", path, err)
	}
	return priv, nil
}

// ParsePrivateKey parses the first PEM block of b as an RSA private key.
func ParsePrivateKey(b []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block found; pass the private key file (-----BEGIN RSA PRIVATE KEY-----), such as .capgo_key_v2")
	}
	if _, ok := block.Headers["DEK-Info"]; ok {
		return nil, errors.New("the key is protected by a passphrase; write an unprotected copy with openssl rsa -in key.pem -out plain.pem")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#1 private key: %w", err)
		}
		return priv, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#8 private key: %w", err)
		}
		priv, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("the key is a %T, but bundle encryption needs an RSA key", k)
		}
		return priv, nil
	case "RSA PUBLIC KEY", "PUBLIC KEY":
		return nil, errors.New("this is the public key, which belongs in the app's capacitor config; pass the private key (.capgo_key_v2, not .capgo_key_v2.pub)")
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("the key is protected by a passphrase; write an unprotected copy with openssl pkcs8 -in key.pem -out plain.pem")
	default:
		return nil, fmt.Errorf("PEM block %q is not an RSA private key", block.Type)
	}
}

// Decrypt undoes Encrypt the way a device does, with only the public key
// and the session key: it writes the plaintext zip to w. otactl uses it to
// prove an encrypted bundle opens before uploading it.
func Decrypt(r io.Reader, w io.Writer, pub *rsa.PublicKey, sessionKey string) error {
	ivText, keyText, ok := strings.Cut(sessionKey, ":")
	if !ok || strings.Contains(keyText, ":") {
		return errors.New("session key is not base64(iv):base64(key)")
	}
	iv, err := base64.StdEncoding.DecodeString(ivText)
	if err != nil || len(iv) != aes.BlockSize {
		return fmt.Errorf("session key: the iv is not %d bytes of base64", aes.BlockSize)
	}
	encKey, err := base64.StdEncoding.DecodeString(keyText)
	if err != nil {
		return fmt.Errorf("session key: %w", err)
	}
	key, err := PublicDecrypt(pub, encKey)
	if err != nil {
		return fmt.Errorf("session key: %w", err)
	}
	if len(key) != aesKeyLen {
		return fmt.Errorf("session key: the AES key is %d bytes, want %d", len(key), aesKeyLen)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("session key: %w", err)
	}
	cbc := cipher.NewCBCDecrypter(block, iv)

	// Each chunk is written only once the next one was read, because the
	// padding to strip is in the last block of the last chunk.
	buf := make([]byte, 64<<10)
	var held []byte
	for {
		n, err := io.ReadFull(r, buf)
		if n%aes.BlockSize != 0 {
			return errors.New("encrypted bundle length is not a multiple of 16: truncated or not encrypted")
		}
		if n > 0 && held != nil {
			if _, err := w.Write(held); err != nil {
				return fmt.Errorf("write decrypted bundle: %w", err)
			}
		}
		if n > 0 {
			cbc.CryptBlocks(buf[:n], buf[:n])
			held = append(held[:0], buf[:n]...)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read encrypted bundle: %w", err)
		}
	}
	if len(held) == 0 {
		return errors.New("encrypted bundle is empty")
	}
	pad := int(held[len(held)-1])
	if pad == 0 || pad > aes.BlockSize || !bytes.Equal(held[len(held)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return errors.New("bad padding after decryption: wrong key or not encrypted with this session key")
	}
	if _, err := w.Write(held[:len(held)-pad]); err != nil {
		return fmt.Errorf("write decrypted bundle: %w", err)
	}
	return nil
}

// DecryptChecksum recovers the lowercase hex SHA-256 from an encrypted
// checksum (hex, or the legacy base64), as a device does. Like the
// plugin, it wants exactly one RSA block.
func DecryptChecksum(pub *rsa.PublicKey, checksum string) (string, error) {
	raw, err := hex.DecodeString(checksum)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(checksum); err != nil {
			return "", errors.New("encrypted checksum is neither hex nor base64")
		}
	}
	if len(raw) != pub.Size() {
		return "", fmt.Errorf("encrypted checksum is %d bytes, but the key's blocks are %d: the bundle was not encrypted with this key", len(raw), pub.Size())
	}
	sum, err := PublicDecrypt(pub, raw)
	if err != nil {
		return "", fmt.Errorf("encrypted checksum: %w", err)
	}
	if len(sum) != sha256.Size {
		return "", fmt.Errorf("encrypted checksum holds %d bytes, not a SHA-256", len(sum))
	}
	return hex.EncodeToString(sum), nil
}

// PublicDecrypt is raw RSA with the public exponent followed by removal
// of PKCS#1 v1.5 type-1 padding: Node's publicDecrypt, the inverse of
// SignPKCS1v15 with crypto.Hash(0). The standard library only verifies
// such blocks against a known value; devices recover the value.
func PublicDecrypt(pub *rsa.PublicKey, c []byte) ([]byte, error) {
	k := pub.Size()
	if len(c) != k {
		return nil, fmt.Errorf("ciphertext is %d bytes, want %d for this key", len(c), k)
	}
	ci := new(big.Int).SetBytes(c)
	if ci.Cmp(pub.N) >= 0 {
		return nil, errors.New("ciphertext is out of range for this key")
	}
	m := new(big.Int).Exp(ci, big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, k))
	// 00 01 FF..FF (at least 8) 00 payload
	if m[0] != 0 || m[1] != 1 {
		return nil, errors.New("not encrypted with the matching private key (bad padding)")
	}
	i := 2
	for i < k && m[i] == 0xff {
		i++
	}
	if i == k || m[i] != 0 || i-2 < 8 {
		return nil, errors.New("not encrypted with the matching private key (bad padding)")
	}
	return m[i+1:], nil
}
