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

// androidVerifier is the plugin's Android verification
// (docs/protocol-capawesome.md §5.3) in plain Java: the publicKey setting
// with its markers and newlines stripped, decoded as X.509
// SubjectPublicKeyInfo, and SHA256withRSA over the file's bytes.
// java.util.Base64's MIME decoder stands in for android.util.Base64.
const androidVerifier = `
import java.nio.file.*;
import java.security.*;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;

public class Verify {
    public static void main(String[] args) throws Exception {
        String value = new String(Files.readAllBytes(Paths.get(args[0])), "UTF-8");
        value = value.replace("-----BEGIN PUBLIC KEY-----", "").replace("-----END PUBLIC KEY-----", "").replace("\n", "");
        PublicKey key = KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(Base64.getMimeDecoder().decode(value)));
        byte[] sig = Base64.getMimeDecoder().decode(new String(Files.readAllBytes(Paths.get(args[2])), "UTF-8"));
        Signature s = Signature.getInstance("SHA256withRSA");
        s.initVerify(key);
        s.update(Files.readAllBytes(Paths.get(args[1])));
        if (!s.verify(sig)) {
            System.out.println("REJECTED");
            System.exit(3);
        }
        System.out.println("VERIFIED");
    }
}
`

// TestSignatureJavaVerifier checks a signature and the one-line public
// key the way the plugin's Android code does, with a real JVM.
func TestSignatureJavaVerifier(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("java is not installed")
	}
	javac, err := exec.LookPath("javac")
	if err != nil {
		t.Skip("javac is not installed")
	}
	key := testSignKey(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	src := write("Verify.java", []byte(androidVerifier))
	if out, err := exec.Command(javac, "-d", dir, src).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v: %s", err, out)
	}
	run := func(args ...string) ([]byte, error) {
		return exec.Command(java, append([]string{"-cp", dir, "Verify"}, args...)...).CombinedOutput()
	}
	line, err := ConfigPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := write("publicKey.txt", []byte(line))
	zip := write("bundle.zip", bytes.Repeat([]byte("PK zip bytes "), 4000))
	sig, err := SignFile(zip, key)
	if err != nil {
		t.Fatal(err)
	}
	good := write("good.sig", []byte(sig))
	if out, err := run(pub, zip, good); err != nil || !strings.Contains(string(out), "VERIFIED") {
		t.Fatalf("the Android verifier rejects otactl's signature: %v: %s", err, out)
	}
	// And it is a real check: another file fails.
	other := write("other.zip", []byte("other bytes"))
	if out, err := run(pub, other, good); err == nil || !strings.Contains(string(out), "REJECTED") {
		t.Fatalf("the Android verifier accepts the signature for other bytes: %v: %s", err, out)
	}
}
