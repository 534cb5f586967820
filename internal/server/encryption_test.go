package server

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/pkg/ota"
)

// encKey is one RSA-2048 key for every encryption test of the package:
// generating one is slow.
var encKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bundle.DeviceKeyBits)
	if err != nil {
		panic(err)
	}
	return k
})

// encryptedZip encrypts plain as otactl deploy web --encrypt-key does.
func encryptedZip(t testing.TB, plain []byte) ([]byte, bundle.Encrypted) {
	t.Helper()
	var ct bytes.Buffer
	enc, err := bundle.Encrypt(bytes.NewReader(plain), &ct, encKey())
	if err != nil {
		t.Fatal(err)
	}
	return ct.Bytes(), enc
}

// encFields are the form fields of an encrypted upload of version.
func encFields(version string, enc bundle.Encrypted) []string {
	return []string{"version", version, "session_key", enc.SessionKey, "encrypted_checksum", enc.Checksum, "key_id", enc.KeyID}
}

func TestUploadEncrypted(t *testing.T) {
	env := newTestEnv(t)
	plain := zipOf(map[string]string{"index.html": "<html>secret</html>"})
	ct, enc := encryptedZip(t, plain)
	const v1 = "/api/v1/apps/" + testApp + "/bundles"
	rec := env.upload(v1, ct, append(encFields("1.0.0", enc), "checksum", sha(ct))...)
	wantStatus(t, rec, http.StatusCreated, "")
	res := decode[ota.UploadResult](t, rec)
	want := &ota.BundleEncryption{SessionKey: enc.SessionKey, EncryptedChecksum: enc.Checksum, KeyID: enc.KeyID}
	if res.Bundle.Encryption == nil || *res.Bundle.Encryption != *want {
		t.Fatalf("upload answer has encryption %+v, want %+v", res.Bundle.Encryption, want)
	}
	if res.Bundle.SHA256 != sha(ct) {
		t.Errorf("sha256 = %s, want that of the encrypted bytes", res.Bundle.SHA256)
	}
	got, err := env.store.GetBundle(t.Context(), testApp, ota.KindWeb, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if got.Encryption == nil || *got.Encryption != *want {
		t.Errorf("stored encryption %+v, want %+v", got.Encryption, want)
	}
	// The same upload again is an idempotent retry.
	rec = env.upload(v1, ct, encFields("1.0.0", enc)...)
	wantStatus(t, rec, http.StatusOK, "")
	// A plain bundle still goes through zip validation.
	rec = env.upload(v1, ct, "version", "1.0.1")
	wantStatus(t, rec, http.StatusUnprocessableEntity, ota.ErrCodeInvalidBundle)
}

func TestUploadEncryptionRejects(t *testing.T) {
	plain := zipOf(map[string]string{"index.html": "<html>secret</html>"})
	ct, enc := encryptedZip(t, plain)
	iv, key, _ := strings.Cut(enc.SessionKey, ":")
	const v1 = "/api/v1/apps/" + testApp + "/bundles"
	with := func(name, value string) []string {
		f := encFields("1.0.0", enc)
		for i := 0; i < len(f); i += 2 {
			if f[i] == name {
				f[i+1] = value
			}
		}
		return f
	}
	tests := []struct {
		name     string
		path     string
		file     []byte
		fields   []string
		wantCode int
		wantErr  string
		wantMsg  string
	}{
		{"no key id", v1, ct, with("key_id", ""), 400, ota.ErrCodeBadRequest, "lacks key_id"},
		{"only a session key", v1, ct, []string{"version", "1.0.0", "session_key", enc.SessionKey}, 400, ota.ErrCodeBadRequest, "lacks encrypted_checksum and key_id"},
		{"apk", "/api/ota/admin/apk/upload", ct, encFields("100", enc), 400, ota.ErrCodeBadRequest, "only web bundles"},
		{"plain sha256 as checksum", v1, ct, with("encrypted_checksum", sha(plain)), 400, ota.ErrCodeBadRequest, "plain SHA-256"},
		{"checksum not hex", v1, ct, with("encrypted_checksum", strings.Repeat("zz", 256)), 400, ota.ErrCodeBadRequest, "not hexadecimal"},
		{"checksum odd", v1, ct, with("encrypted_checksum", enc.Checksum[:511]), 400, ota.ErrCodeBadRequest, "511 hex digits"},
		{"checksum short", v1, ct, with("encrypted_checksum", enc.Checksum[:200]), 400, ota.ErrCodeBadRequest, "200 hex digits"},
		{"checksum of another key size", v1, ct, with("encrypted_checksum", enc.Checksum[:256]), 400, ota.ErrCodeBadRequest, "must match"},
		{"session key without colon", v1, ct, with("session_key", iv+key), 400, ota.ErrCodeBadRequest, "base64(iv):base64(encrypted key)"},
		{"session key two colons", v1, ct, with("session_key", enc.SessionKey+":AA=="), 400, ota.ErrCodeBadRequest, "base64(iv):base64(encrypted key)"},
		{"session key json null", v1, ct, with("session_key", "null"), 400, ota.ErrCodeBadRequest, "base64(iv):base64(encrypted key)"},
		{"short iv", v1, ct, with("session_key", "AAAA:"+key), 400, ota.ErrCodeBadRequest, "16-byte IV"},
		{"broken base64 key", v1, ct, with("session_key", iv+":A"), 400, ota.ErrCodeBadRequest, "not base64"},
		{"key id too long", v1, ct, with("key_id", enc.KeyID+"x"), 400, ota.ErrCodeBadRequest, "first 20 characters"},
		{"key id not base64", v1, ct, with("key_id", "MIIB-CgK"), 400, ota.ErrCodeBadRequest, "first 20 characters"},
		{"plain zip sent", v1, plain, encFields("1.0.0", enc), 422, ota.ErrCodeInvalidBundle, "not AES-encrypted"},
		{"zip-like, block-sized", v1, append([]byte("PK\x03\x04"), make([]byte, 28)...), encFields("1.0.0", enc), 422, ota.ErrCodeInvalidBundle, "plain zip"},
		{"checksum of the zip", v1, ct, append(encFields("1.0.0", enc), "checksum", sha(plain)), 422, ota.ErrCodeChecksum, "SHA-256 of the encrypted file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			rec := env.upload(tt.path, tt.file, tt.fields...)
			wantStatus(t, rec, tt.wantCode, tt.wantErr)
			if er := decode[ota.ErrorResponse](t, rec); !strings.Contains(er.Message, tt.wantMsg) {
				t.Errorf("message %q does not say %q", er.Message, tt.wantMsg)
			}
			if _, err := env.blobs.Stat(t.Context(), sha(tt.file)); err == nil {
				t.Error("the rejected upload's bytes were kept")
			}
		})
	}
}

// TestEncryptedEndToEnd follows an encrypted bundle from upload to a
// device: the device with the key is offered it, downloads the bytes, and
// with only the public key and the answer recovers the original zip,
// whose SHA-256 is what the encrypted checksum says.
func TestEncryptedEndToEnd(t *testing.T) {
	env := newTestEnv(t)
	plain := zipOf(map[string]string{"index.html": "<html>1.2.0</html>", "app.js": strings.Repeat("notifyAppReady();\n", 300)})
	ct, enc := encryptedZip(t, plain)
	wantStatus(t, env.upload("/api/v1/apps/"+testApp+"/bundles", ct, append(encFields("1.2.0", enc), "checksum", sha(ct))...),
		http.StatusCreated, "")
	// Through a restart too: the lean start-up decoder must keep the keys.
	env.reopen()

	req := map[string]any{
		"platform": "android", "device_id": "0b7a3f4e-1111-4c22-8a33-123456789abc", "app_id": testApp,
		"version_build": "1.0.0", "version_name": "1.0.0", "plugin_version": "8.51.14",
		"is_emulator": false, "is_prod": true, "defaultChannel": "", "key_id": enc.KeyID,
	}
	rec := env.device(http.MethodPost, "/updates", req)
	answer := decode[ota.UpdateResponse](t, rec)
	if answer.Error != "" || answer.SessionKey == nil {
		t.Fatalf("device with the key got %s", rec.Body.String())
	}
	dl := env.device(http.MethodGet, strings.TrimPrefix(answer.URL, testPublic), nil)
	if dl.Code != http.StatusOK {
		t.Fatalf("download: status %d", dl.Code)
	}
	pub := &encKey().PublicKey
	var got bytes.Buffer
	if err := bundle.Decrypt(bytes.NewReader(dl.Body.Bytes()), &got, pub, *answer.SessionKey); err != nil {
		t.Fatalf("decrypt the download with the answer's session key: %v", err)
	}
	if !bytes.Equal(got.Bytes(), plain) {
		t.Fatal("the decrypted download is not the original zip")
	}
	sum, err := bundle.DecryptChecksum(pub, answer.Checksum)
	if err != nil {
		t.Fatal(err)
	}
	if sum != sha(plain) {
		t.Errorf("the answer's checksum decrypts to %s, the zip's sha256 is %s", sum, sha(plain))
	}

	// The same bundle refused to devices that cannot open it.
	delete(req, "key_id")
	wantRefusal(t, env.device(http.MethodPost, "/updates", req), ota.UpdEncryptionKeyRequired, ota.KindBlocked,
		map[string]any{"version": "1.2.0", "old": "1.0.0"})
}
