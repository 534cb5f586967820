package bundle

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	signKeyOnce sync.Once
	signKey     *rsa.PrivateKey
)

// testSignKey is one 2048-bit key for the package's tests: making one
// costs a noticeable share of a second.
func testSignKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	signKeyOnce.Do(func() {
		k, err := GenerateSigningKey()
		if err != nil {
			t.Fatal(err)
		}
		signKey = k
	})
	return signKey
}

func TestSignVerify(t *testing.T) {
	key := testSignKey(t)
	data := bytes.Repeat([]byte("bundle bytes "), 5000)
	sig, err := Sign(bytes.NewReader(data), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckSignature(sig); err != nil {
		t.Errorf("CheckSignature(own signature): %v", err)
	}
	if raw, _ := base64.StdEncoding.DecodeString(sig); len(raw) != SignKeyBits/8 {
		t.Errorf("signature is %d bytes, want %d", len(raw), SignKeyBits/8)
	}
	if err := Verify(bytes.NewReader(data), &key.PublicKey, sig); err != nil {
		t.Errorf("Verify: %v", err)
	}
	// PKCS#1 v1.5 is deterministic: the same bytes give the same signature,
	// so a retried deploy uploads the same one.
	again, _ := Sign(bytes.NewReader(data), key)
	if again != sig {
		t.Error("signing the same bytes twice gave two signatures")
	}
	tampered := bytes.Clone(data)
	tampered[100] ^= 1
	if err := Verify(bytes.NewReader(tampered), &key.PublicKey, sig); err == nil {
		t.Error("Verify accepted changed bytes")
	}
	other, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(bytes.NewReader(data), &other.PublicKey, sig); err == nil {
		t.Error("Verify accepted another key")
	}
	if _, err := Sign(bytes.NewReader(data), nil); err == nil {
		t.Error("Sign without a key succeeded")
	}
}

func TestCheckSignature(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 256))
	tests := []struct {
		name, sig string
		ok        bool
	}{
		{"RSA-2048", good, true},
		{"RSA-1024", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 128)), true},
		{"too short", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64)), false},
		{"too long", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 2048)), false},
		{"unpadded", strings.TrimRight(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 257)), "="), false},
		{"url alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 256))), false},
		{"line breaks", good[:64] + "\n" + good[64:], false},
		{"hex", strings.Repeat("ab", 256), false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		if err := CheckSignature(tt.sig); (err == nil) != tt.ok {
			t.Errorf("%s: CheckSignature = %v, want ok %t", tt.name, err, tt.ok)
		}
	}
}

func TestSigningKeyPEM(t *testing.T) {
	key := testSignKey(t)
	priv, err := PrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivateKey(priv)
	if err != nil || !back.Equal(key) {
		t.Fatalf("ParsePrivateKey(PrivateKeyPEM) = %v, %v", back != nil, err)
	}
	pub, err := SigningPublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pub, []byte("-----BEGIN PUBLIC KEY-----\n")) {
		t.Errorf("public key PEM starts %q, want the SPKI marker", pub[:30])
	}
	line, err := ConfigPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(line, "\n") || !strings.HasPrefix(line, "-----BEGIN PUBLIC KEY-----MII") || !strings.HasSuffix(line, "-----END PUBLIC KEY-----") {
		t.Errorf("config public key = %q", line)
	}
}

// TestSignatureOpenSSL checks interoperability with an independent
// implementation of SHA256withRSA: openssl verifies what Sign makes with
// the SPKI public key, and Verify accepts what openssl signs.
func TestSignatureOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	key := testSignKey(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "bundle.zip")
	if err := os.WriteFile(data, bytes.Repeat([]byte("zip "), 3000), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _ := SigningPublicKeyPEM(&key.PublicKey)
	priv, _ := PrivateKeyPEM(key)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pubPath, privPath := write("public.pem", pub), write("private.pem", priv)
	sig, err := SignFile(data, key)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(sig)
	sigPath := write("sig.bin", raw)
	if out, err := exec.Command(openssl, "dgst", "-sha256", "-verify", pubPath, "-signature", sigPath, data).CombinedOutput(); err != nil {
		t.Fatalf("openssl does not verify Sign's signature: %v: %s", err, out)
	}
	out, err := exec.Command(openssl, "dgst", "-sha256", "-sign", privPath, data).Output()
	if err != nil {
		t.Fatalf("openssl sign: %v", err)
	}
	f, _ := os.Open(data)
	defer f.Close()
	if err := Verify(f, &key.PublicKey, base64.StdEncoding.EncodeToString(out)); err != nil {
		t.Errorf("Verify rejects openssl's signature: %v", err)
	}
}
