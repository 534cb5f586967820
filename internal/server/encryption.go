package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/pkg/ota"
)

// Encrypted bundles (protocol §6). otad does no cryptography: the client
// encrypts (otactl deploy web --encrypt-key, or @capgo/cli bundle
// encrypt) and sends the three values below with the encrypted bytes;
// otad stores them and hands them to devices.

// encryptionFields are the upload form fields of an encrypted bundle,
// given all together or not at all.
var encryptionFields = []string{"session_key", "encrypted_checksum", "key_id"}

const (
	// minRSABytes is RSA-1024, the smallest key Go and Node still use.
	// Devices want exactly 256 bytes (RSA-2048), but other sizes are
	// stored: a mismatch is the client's to find, not a reason to lose an
	// upload.
	minRSABytes = 128
	// maxKeyIDLen is what the plugin sends (the first 20 characters of
	// the PEM body); plugins before 8.40.7 sent 4.
	maxKeyIDLen = 20
	aesIVLen    = 16
)

// checkEncryption reads the encryption fields of an upload form: nil
// when there are none, an error when they are incomplete or malformed.
func checkEncryption(fields map[string]string, kind string) (*ota.BundleEncryption, error) {
	var missing []string
	for _, k := range encryptionFields {
		if fields[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) == len(encryptionFields) {
		return nil, nil
	}
	if len(missing) > 0 {
		return nil, badRequest("an encrypted upload carries session_key, encrypted_checksum and key_id together; this one lacks %s",
			strings.Join(missing, " and "))
	}
	if kind != ota.KindWeb {
		return nil, badRequest("only web bundles can be encrypted; devices never download %s files", kind)
	}
	sum := strings.ToLower(fields["encrypted_checksum"])
	if !isHex(sum) {
		return nil, badRequest("encrypted_checksum %q is not hexadecimal; send the hex RSA-encrypted checksum (Encoded Checksum of @capgo/cli bundle encrypt)", clip(sum))
	}
	if len(sum) == 64 {
		return nil, badRequest("encrypted_checksum is a plain SHA-256; devices with a public key only accept the RSA-encrypted checksum (Encoded Checksum of @capgo/cli bundle encrypt)")
	}
	if len(sum)%2 != 0 || len(sum) < 2*minRSABytes {
		return nil, badRequest("encrypted_checksum has %d hex digits; an RSA-encrypted checksum has 512 (RSA-2048), the size of the key", len(sum))
	}
	sk := fields["session_key"]
	ivText, keyText, ok := strings.Cut(sk, ":")
	if !ok || !isBase64Chars(ivText) || !isBase64Chars(keyText) {
		return nil, badRequest("session_key must be base64(iv):base64(encrypted key), as @capgo/cli bundle encrypt prints it (ivSessionKey)")
	}
	iv, err := base64.StdEncoding.DecodeString(ivText)
	if err != nil || len(iv) != aesIVLen {
		return nil, badRequest("session_key: the part before the colon must be a %d-byte IV in base64", aesIVLen)
	}
	key, err := base64.StdEncoding.DecodeString(keyText)
	if err != nil {
		return nil, badRequest("session_key: the encrypted key after the colon is not base64: %v", err)
	}
	if len(key) != len(sum)/2 {
		return nil, badRequest("session_key holds a %d-byte encrypted key but encrypted_checksum is %d bytes; both come from one RSA key, so they must match", len(key), len(sum)/2)
	}
	id := fields["key_id"]
	if len(id) > maxKeyIDLen || !isBase64Chars(id) {
		return nil, badRequest("key_id %q must be the first %d characters of the public key's PEM body, as devices send it", clip(id), maxKeyIDLen)
	}
	return &ota.BundleEncryption{SessionKey: sk, EncryptedChecksum: sum, KeyID: id}, nil
}

// checkEncryptedContent catches the likely mistake of sending the plain
// zip with the encryption fields: AES-CBC output is a whole number of
// 16-byte blocks, and random bytes almost never start like a zip.
func (s *Server) checkEncryptedContent(ctx context.Context, info *blob.Info) error {
	if info.Size%aesIVLen != 0 {
		return newError(http.StatusUnprocessableEntity, ota.ErrCodeInvalidBundle,
			"the file is %d bytes, not a multiple of 16, so it is not AES-encrypted; upload the encrypted file, not the zip", info.Size)
	}
	content, _, err := s.blobs.Open(ctx, info.SHA256)
	if err != nil {
		return fmt.Errorf("open stored upload %s: %w", info.SHA256, err)
	}
	defer content.Close()
	head := make([]byte, len(zipMagic))
	if _, err := io.ReadFull(content, head); err == nil && bytes.Equal(head, zipMagic) {
		return newError(http.StatusUnprocessableEntity, ota.ErrCodeInvalidBundle,
			"the file is a plain zip, but the form says it is encrypted; upload the encrypted file")
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// isBase64Chars reports whether s is non-empty standard base64 text.
func isBase64Chars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '+' && c != '/' && c != '=' {
			return false
		}
	}
	return s != ""
}
