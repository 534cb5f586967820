package cli

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/bundle"
)

// TestKeyCreate: the pair is in the format the plugin loads (PKCS#1
// "RSA PUBLIC KEY"), the private key is 0600 and encrypts bundles that the
// public key opens, and the key id printed is the first 20 characters of
// the public key's PEM body, the one devices send.
func TestKeyCreate(t *testing.T) {
	e := newTestEnv(t)
	r := e.mustRun("key", "create", "-o", "json")
	var kr KeyCreateResult
	if err := json.Unmarshal([]byte(r.stdout), &kr); err != nil {
		t.Fatalf("key create -o json printed %q: %v", r.stdout, err)
	}
	privFile := filepath.Join(e.project, DefaultKeyFile)
	if kr.PrivateKeyFile != privFile || kr.PublicKeyFile != privFile+".pub" {
		t.Errorf("files %s, %s; want %s and .pub in the project root", kr.PrivateKeyFile, kr.PublicKeyFile, privFile)
	}
	fi, err := os.Stat(privFile)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
	}
	priv, err := bundle.LoadPrivateKey(privFile)
	if err != nil || priv.N.BitLen() != bundle.DeviceKeyBits {
		t.Fatalf("private key: %v", err)
	}
	pubPEM, err := os.ReadFile(privFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if string(pubPEM) != kr.PublicKey || !strings.HasPrefix(kr.PublicKey, "-----BEGIN RSA PUBLIC KEY-----\n") {
		t.Errorf("public key file %q, printed %q", pubPEM, kr.PublicKey)
	}
	block, _ := pem.Decode(pubPEM)
	pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
	if err != nil || !pub.Equal(&priv.PublicKey) {
		t.Fatalf("the .pub file is not the PKCS#1 public key of the private key: %v", err)
	}
	// key_id by its definition: the PEM body's first 20 characters.
	body := strings.Join(strings.Split(strings.TrimSpace(string(pubPEM)), "\n")[1:], "")
	if kr.KeyID != body[:20] {
		t.Errorf("key id %q, want the PEM body's first 20 characters %q", kr.KeyID, body[:20])
	}

	// The key encrypts what the public key opens, with the same key id.
	e.generate("k")
	r = e.mustRun("bundle", "zip", "--out", "app.zip", "--encrypt-key", DefaultKeyFile, "--json")
	var zr BundleZipResult
	if err := json.Unmarshal([]byte(r.stdout), &zr); err != nil {
		t.Fatal(err)
	}
	if zr.KeyID != kr.KeyID {
		t.Errorf("bundle zip used key id %q, key create printed %q", zr.KeyID, kr.KeyID)
	}
	ct, err := os.ReadFile(zr.EncryptedFilename)
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	if err := bundle.Decrypt(bytes.NewReader(ct), &plain, pub, zr.IVSessionKey); err != nil {
		t.Fatalf("the public key does not open the bundle: %v", err)
	}

	// An existing pair is never replaced without --force.
	old, _ := os.ReadFile(privFile)
	if r := e.run("", "key", "create"); r.code != ExitUsage || !strings.Contains(r.err, "exists already") || !strings.Contains(r.err, "--force") {
		t.Errorf("second key create: exit %d stderr %q", r.code, r.err)
	}
	if now, _ := os.ReadFile(privFile); !bytes.Equal(now, old) {
		t.Error("the key was replaced without --force")
	}
	e.mustRun("key", "create", "--force")
	if now, _ := os.ReadFile(privFile); bytes.Equal(now, old) {
		t.Error("--force kept the old key")
	}
	if fi, _ := os.Stat(privFile); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced private key mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestKeyCreateRefusals(t *testing.T) {
	e := newTestEnv(t)
	// webDir is dist: a key there would ship to every device.
	if r := e.run("", "key", "create", "--out", "dist/key"); r.code != ExitUsage || !strings.Contains(r.err, "inside webDir") {
		t.Errorf("key in webDir: exit %d stderr %q", r.code, r.err)
	}
	if _, err := os.Stat(filepath.Join(e.project, "dist", "key")); err == nil {
		t.Error("the key was written into webDir")
	}
	// A left-over .pub alone also stops it.
	writeFile(t, filepath.Join(e.project, "other.pub"), "x")
	if r := e.run("", "key", "create", "--out", "other"); r.code != ExitUsage || !strings.Contains(r.err, "other.pub exists already") {
		t.Errorf("existing .pub: exit %d stderr %q", r.code, r.err)
	}
	if _, err := os.Stat(filepath.Join(e.project, "other")); err == nil {
		t.Error("the private key was written although the .pub exists")
	}
}

func TestGitignoreWarning(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, DefaultKeyFile)
	if w := gitignoreWarning(dir, key); !strings.Contains(w, "echo .capgo_key_v2 >> .gitignore") {
		t.Errorf("no .gitignore: warning %q", w)
	}
	writeFile(t, filepath.Join(dir, ".gitignore"), "node_modules/\n.capgo_key_v2\n")
	if w := gitignoreWarning(dir, key); w != "" {
		t.Errorf("ignored key: warning %q", w)
	}
	if w := gitignoreWarning(dir, filepath.Join(t.TempDir(), "k")); w != "" {
		t.Errorf("key outside the project: warning %q", w)
	}
}
