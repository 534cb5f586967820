package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/pkg/ota"
)

// encKey is one RSA-2048 key for the package's tests: generating one is
// slow.
var encKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bundle.DeviceKeyBits)
	if err != nil {
		panic(err)
	}
	return k
})

// writeKey writes priv as @capgo/cli key create does (PKCS#1 PEM) into
// the project and returns its name there.
func (e *testEnv) writeKey(name string, priv *rsa.PrivateKey) string {
	e.t.Helper()
	writeFile(e.t, filepath.Join(e.project, name),
		string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})))
	return name
}

// openEncrypted decrypts ct as a device with the public key would and
// checks the plaintext against the encrypted checksum. It returns the
// plaintext.
func openEncrypted(t *testing.T, ct []byte, enc *ota.BundleEncryption) []byte {
	t.Helper()
	pub := &encKey().PublicKey
	var plain bytes.Buffer
	if err := bundle.Decrypt(bytes.NewReader(ct), &plain, pub, enc.SessionKey); err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	sum, err := bundle.DecryptChecksum(pub, enc.EncryptedChecksum)
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256.Sum256(plain.Bytes()); hex.EncodeToString(got[:]) != sum {
		t.Fatalf("decrypted zip has sha256 %x, the encrypted checksum says %s", got, sum)
	}
	if enc.KeyID != bundle.KeyID(pub) {
		t.Errorf("key id %q, want %q", enc.KeyID, bundle.KeyID(pub))
	}
	return plain.Bytes()
}

func TestDeployWebEncrypted(t *testing.T) {
	e := newTestEnv(t)
	e.generate("secret")
	e.env[encryptKeyEnv] = e.writeKey(".capgo_key_v2", encKey())
	r := e.mustRun("deploy", "web", "--skip-build", "-o", "json")
	var dr DeployResult
	if err := json.Unmarshal([]byte(r.stdout), &dr); err != nil {
		t.Fatalf("deploy -o json printed %q: %v", r.stdout, err)
	}
	if dr.Encryption == nil || dr.Upload == nil || dr.Upload.Bundle.Encryption == nil {
		t.Fatalf("deploy result has no encryption: %s", r.stdout)
	}
	if *dr.Upload.Bundle.Encryption != *dr.Encryption || dr.Upload.Bundle.SHA256 != dr.SHA256 {
		t.Errorf("server stored %+v (sha256 %s), otactl sent %+v (sha256 %s)",
			dr.Upload.Bundle.Encryption, dr.Upload.Bundle.SHA256, dr.Encryption, dr.SHA256)
	}

	// What devices download is the encrypted zip, and it opens.
	resp, err := http.Get(dr.Upload.Bundle.URL)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d, %v", resp.StatusCode, err)
	}
	plain := openEncrypted(t, ct, dr.Encryption)
	if _, err := bundle.Validate(bytes.NewReader(plain), int64(len(plain)), bundle.Limits{}); err != nil {
		t.Errorf("decrypted bundle is not a valid zip: %v", err)
	}

	// A device with the public key is offered it with the keys to open it.
	device := ota.UpdateRequest{
		AppID: testAppID, Platform: "ios", DeviceID: "00000000-0000-4000-8000-000000000002",
		VersionName: "0.9.0", VersionBuild: "0.9.0", PluginVersion: "8.51.14", KeyID: dr.Encryption.KeyID,
	}
	up, err := ota.NewClient(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := up.CheckUpdate(context.Background(), device)
	if err != nil {
		t.Fatal(err)
	}
	if offer.Version != "1.0.0" || offer.Checksum != dr.Encryption.EncryptedChecksum || offer.SessionKey == nil || *offer.SessionKey != dr.Encryption.SessionKey {
		t.Errorf("device with the key was offered %+v", offer)
	}

	// The stored bundle lists its encryption.
	client, _ := ota.NewClient(e.srv.URL, ota.WithToken(e.srv.Token))
	bs, err := client.Bundles(context.Background(), testAppID)
	if err != nil || len(bs) != 1 || bs[0].Encryption == nil || *bs[0].Encryption != *dr.Encryption {
		t.Errorf("bundles = %+v, %v", bs, err)
	}
}

func TestDeployWebEncryptKeyFlags(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      string // OTACTL_ENCRYPT_KEY
		args     []string
		wantCode int
		wantErr  string
	}{
		{"flag beats env", "missing.pem", []string{"--encrypt-key", "key.pem"}, 0, ""},
		{"env", "key.pem", nil, 0, ""},
		{"env names a missing file", "missing.pem", nil, ExitError, "missing.pem"},
		{"public key", "", []string{"--encrypt-key", "pub.pem"}, ExitError, "this is the public key"},
		{"1024-bit key", "", []string{"--encrypt-key", "small.pem"}, ExitUsage, "only accepts 2048-bit"},
		{"empty flag beats env", "missing.pem", []string{"--encrypt-key", ""}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.generate("k")
			e.writeKey("key.pem", encKey())
			e.writeKey("small.pem", small)
			writeFile(t, filepath.Join(e.project, "pub.pem"), string(bundle.PublicKeyPEM(&encKey().PublicKey)))
			if tt.env != "" {
				e.env[encryptKeyEnv] = tt.env
			}
			r := e.run("", append([]string{"deploy", "web", "--dry-run", "-o", "json"}, tt.args...)...)
			if r.code != tt.wantCode || !strings.Contains(r.err, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d with %q", r.code, r.err, tt.wantCode, tt.wantErr)
			}
			if tt.wantCode != 0 {
				if len(e.runner.calls) != 0 {
					t.Errorf("the build ran (%q) before the key was refused", e.runner.calls)
				}
				return
			}
			var dr DeployResult
			if err := json.Unmarshal([]byte(r.stdout), &dr); err != nil {
				t.Fatal(err)
			}
			encrypted := tt.name != "empty flag beats env"
			if (dr.Encryption != nil) != encrypted || strings.HasSuffix(dr.File, "_encrypted.zip") != encrypted {
				t.Fatalf("encrypted = %v, file %s; want encrypted %v", dr.Encryption != nil, dr.File, encrypted)
			}
			if encrypted {
				ct, err := os.ReadFile(dr.File)
				if err != nil {
					t.Fatal(err)
				}
				if s := sha256.Sum256(ct); hex.EncodeToString(s[:]) != dr.SHA256 || int64(len(ct)) != dr.Size {
					t.Errorf("printed sha256 %s size %d are not those of the encrypted file", dr.SHA256, dr.Size)
				}
				openEncrypted(t, ct, dr.Encryption)
			}
		})
	}
}

func TestBundleZipEncrypt(t *testing.T) {
	e := newTestEnv(t)
	e.generate("z")
	key := e.writeKey(".capgo_key_v2", encKey())
	r := e.mustRun("bundle", "zip", "--out", "app.zip", "--encrypt-key", key)
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		k, v, _ := strings.Cut(l, ": ")
		lines[k] = v
	}
	zipPath := filepath.Join(e.project, "app.zip")
	encPath := zipPath + "_encrypted.zip"
	if !strings.Contains(r.stdout, "Encrypted zip saved at "+encPath+"\n") {
		t.Errorf("no 'Encrypted zip saved at' line naming %s:\n%s", encPath, r.stdout)
	}
	enc := &ota.BundleEncryption{SessionKey: lines["ivSessionKey"], EncryptedChecksum: lines["Encoded Checksum"], KeyID: lines["Key ID"]}
	ct, err := os.ReadFile(encPath)
	if err != nil {
		t.Fatal(err)
	}
	plain := openEncrypted(t, ct, enc)
	zipBytes, err := os.ReadFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, zipBytes) {
		t.Error("the encrypted file does not decrypt to the zip")
	}
	if s := sha256.Sum256(zipBytes); lines["Checksum SHA256"] != hex.EncodeToString(s[:]) {
		t.Errorf("Checksum SHA256 = %s, want the plain zip's", lines["Checksum SHA256"])
	}

	r = e.mustRun("bundle", "zip", "--out", "app.zip", "--encrypt-key", key, "--json")
	var zr BundleZipResult
	if err := json.Unmarshal([]byte(r.stdout), &zr); err != nil {
		t.Fatal(err)
	}
	if zr.EncryptedFilename != encPath || len(zr.EncodedChecksum) != 512 || zr.IVSessionKey == "" || zr.KeyID != bundle.KeyID(&encKey().PublicKey) {
		t.Errorf("JSON result = %+v", zr)
	}

	if r := e.run("", "bundle", "zip", "--out", "x.zip", "--encrypt-key", "nope.pem"); r.code == 0 || !strings.Contains(r.err, "nope.pem") {
		t.Errorf("missing key: exit %d, stderr %q", r.code, r.err)
	}
	if _, err := os.Stat(filepath.Join(e.project, "x.zip")); err == nil {
		t.Error("the zip was written although the key could not be read")
	}
}
