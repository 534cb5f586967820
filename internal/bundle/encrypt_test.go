package bundle

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// testKey is one RSA-2048 key for the whole package test: generating
// keys is the slow part.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, DeviceKeyBits)
	if err != nil {
		panic(err)
	}
	return k
})

// Vectors from the plugin's own contract tests
// (Cap-go/capacitor-updater native-contract-tests/crypto-rsa.json), made
// with Node's crypto.privateEncrypt as @capgo/cli does.
const (
	vectorPublicKey = `-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAqJikYizowR4jGct5Uv8NdTjc+oXdnSp+I/P27huEx/eHTP+UQRIR
v6cYq2d9wOCU5qZpyf4P7u5qibvfWM+Db2L9FS6zjLrFxaKIVk4bnixHEkzFEwJ4
lIWq2cuwyVpdwriXvKRTen1bxslJHDKSkRAZX/u2rS+lbfs5k//2FBnVXK2aNGIv
I3Kl9bHl4xhnwe1CAahX+5j4mB50jrGJEYU/Ocp9gGHwwm4+smJhJRw8d6060dRY
SmoGQ34X4J4jO16Wln26TGNaSA0iBPVJt82MvO1FJJJFMAuIJDQfbysIKYFBWlBA
2OCmylv7cVls7DdUCiDIWbzNefCZa3RyBwIDAQAB
-----END RSA PUBLIC KEY-----`
	vectorSessionKey = "371cabdcb9827ffbc75fa978701d4bb5751fbdbddc0f46b6670c10f4529a0d212ecebd1460b5aecda16fe3a13f14cfbc48da3768db978b93acc1e707fa7eab54ffc13062601eb2bce6a8f17bd0faa042cc44660f8f7235451c96860977abb57bfe031e01a21787d21fcc2f9bdf9f9fba07a8ab089db417bd0443633accbdad56d4a8ec0a1d3d35c7aafd163bd5f1b96fd94791911b2fe7f4561038dd9350ad703839281da43f07b06c78418e6af3530dc78d1fb9d4467ab2c83d745f01f051431cfbd70c8cad6db2f3153759e5bed6045a7e1b316d18a6aa06a1af38277e1daca559c5f1dc887268c1ff19b51199a51e948fcc9cb9de8be0a05d2fd90c1d1988"
	vectorChecksum   = "05d6d98e02793a420054175330ffdad7bf0bbf64459829341663ca59c9ee2ef278ab8291b6d094410fbdd25d4bf40528d965d8b4fad590daf212b0d309602f895b3bbcd492e7fd42783fbfe23afa70370afa9e6c6a0a606dc12ecbc2c14c6d7bde8e008b378c9dbe4d269626ecb2475c6ab86e8f9ea183352bad4439fd561273b8fa75799382b4dc99d16172793ac200c5f885c9f5e91527afe2b95b0d0c6a9bcd8ce12897a7aff0c4901551f444396ba059d9adf4805719a86529ccc77cbaae58f6456eeeb44b936443b37a40e3b86ec883e4d58b16fb5dc1059171d4149568d42cda2ba474dcea82d706a8d89b55620c5fbac3d719922ee6753ff05f0d2bc8"
	// vectorDigest is the SHA-256 of nothing, which vectorChecksum holds.
	vectorDigest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

func vectorKey(t testing.TB) *rsa.PublicKey {
	t.Helper()
	block, _ := pem.Decode([]byte(vectorPublicKey))
	pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

var sessionKeyRE = regexp.MustCompile(`^[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$`)

func TestPublicDecryptVectors(t *testing.T) {
	pub := vectorKey(t)
	c, _ := hex.DecodeString(vectorSessionKey)
	got, err := PublicDecrypt(pub, c)
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Repeat([]byte{0xab}, 16); !bytes.Equal(got, want) {
		t.Errorf("session key = %x, want %x", got, want)
	}
	sum, err := DecryptChecksum(pub, vectorChecksum)
	if err != nil {
		t.Fatal(err)
	}
	if sum != vectorDigest {
		t.Errorf("checksum = %s, want %s", sum, vectorDigest)
	}
	raw, _ := hex.DecodeString(vectorChecksum)
	if sum, err := DecryptChecksum(pub, base64.StdEncoding.EncodeToString(raw)); err != nil || sum != vectorDigest {
		t.Errorf("base64 checksum = %s, %v; want %s", sum, err, vectorDigest)
	}
	if got := KeyID(pub); got != "MIIBCgKCAQEAqJikYizo" {
		t.Errorf("KeyID = %q, want MIIBCgKCAQEAqJikYizo", got)
	}
}

func TestDecryptChecksumRejects(t *testing.T) {
	pub := vectorKey(t)
	tampered := []byte(vectorChecksum)
	tampered[10] ^= 1 // still hex, still 256 bytes, wrong value
	tests := []struct {
		name, checksum, want string
	}{
		{"255 bytes", strings.Repeat("00", 255), "255 bytes"},
		{"plain sha256", vectorDigest, "32 bytes"},
		{"not encoded", "not a checksum!", "neither hex nor base64"},
		{"empty", "", "0 bytes"},
		{"out of range", strings.Repeat("ff", 256), "out of range"},
		{"tampered", string(tampered), "bad padding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecryptChecksum(pub, tt.checksum)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestEncryptRoundTrip(t *testing.T) {
	priv := testKey()
	for _, n := range []int{0, 1, 15, 16, 17, 64<<10 - 1, 64 << 10, 64<<10 + 5, 200_001} {
		plain := make([]byte, n)
		rand.Read(plain)
		var ct bytes.Buffer
		enc, err := Encrypt(bytes.NewReader(plain), &ct, priv)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if want := (n/16 + 1) * 16; ct.Len() != want {
			t.Errorf("%d bytes: ciphertext is %d bytes, want %d", n, ct.Len(), want)
		}
		if !sessionKeyRE.MatchString(enc.SessionKey) {
			t.Errorf("%d bytes: session key %q has the wrong form", n, enc.SessionKey)
		}
		if iv, _ := base64.StdEncoding.DecodeString(strings.SplitN(enc.SessionKey, ":", 2)[0]); len(iv) != 16 {
			t.Errorf("%d bytes: iv is %d bytes", n, len(iv))
		}
		if len(enc.Checksum) != 512 {
			t.Errorf("%d bytes: checksum has %d hex digits, want 512", n, len(enc.Checksum))
		}
		var out bytes.Buffer
		if err := Decrypt(bytes.NewReader(ct.Bytes()), &out, &priv.PublicKey, enc.SessionKey); err != nil {
			t.Fatalf("%d bytes: decrypt: %v", n, err)
		}
		if !bytes.Equal(out.Bytes(), plain) {
			t.Fatalf("%d bytes: decrypted bytes differ from the original", n)
		}
		sum, err := DecryptChecksum(&priv.PublicKey, enc.Checksum)
		if err != nil {
			t.Fatal(err)
		}
		if want := sha256.Sum256(plain); sum != hex.EncodeToString(want[:]) {
			t.Errorf("%d bytes: checksum decrypts to %s, want the plaintext's sha256", n, sum)
		}
	}
}

// TestEncryptIsRawPKCS1 checks the session key by hand, independent of
// PublicDecrypt: c^e mod n must be 00 01 FF.. 00 followed by 16 bytes.
func TestEncryptIsRawPKCS1(t *testing.T) {
	priv := testKey()
	enc, err := Encrypt(strings.NewReader("x"), new(bytes.Buffer), priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := base64.StdEncoding.DecodeString(strings.SplitN(enc.SessionKey, ":", 2)[1])
	if err != nil {
		t.Fatal(err)
	}
	m := rawPublic(&priv.PublicKey, c)
	want := append(append([]byte{0, 1}, bytes.Repeat([]byte{0xff}, 256-3-16)...), 0)
	if !bytes.Equal(m[:len(want)], want) {
		t.Errorf("padding = %x, want type-1 padding %x", m[:len(want)], want)
	}
}

func TestEncryptFreshKeys(t *testing.T) {
	priv := testKey()
	var a, b bytes.Buffer
	ea, err := Encrypt(strings.NewReader("same"), &a, priv)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := Encrypt(strings.NewReader("same"), &b, priv)
	if err != nil {
		t.Fatal(err)
	}
	if ea.SessionKey == eb.SessionKey || bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two encryptions share a session key")
	}
	if ea.Checksum != eb.Checksum {
		t.Error("the encrypted checksum of the same bytes differs; type-1 padding is deterministic")
	}
}

func TestKeyIDMatchesPEM(t *testing.T) {
	pub := &testKey().PublicKey
	p := string(PublicKeyPEM(pub))
	if !strings.HasPrefix(p, "-----BEGIN RSA PUBLIC KEY-----\n") {
		t.Fatalf("PEM starts %q; the plugin needs PKCS#1", p[:40])
	}
	body := strings.Split(p, "\n")[1]
	id := KeyID(pub)
	if len(id) != KeyIDLen || id != body[:KeyIDLen] {
		t.Errorf("KeyID = %q, want the first 20 characters of %q", id, body)
	}
	if !strings.HasPrefix(id, "MIIBCgKCAQEA") {
		t.Errorf("KeyID = %q, want the prefix every RSA-2048 PKCS#1 key has", id)
	}
}

func TestDecryptRejects(t *testing.T) {
	priv := testKey()
	var ct bytes.Buffer
	enc, err := Encrypt(strings.NewReader(strings.Repeat("zip bytes ", 100)), &ct, priv)
	if err != nil {
		t.Fatal(err)
	}
	other := vectorKey(t)
	ivOnly := strings.SplitN(enc.SessionKey, ":", 2)[0]
	tests := []struct {
		name       string
		ct         []byte
		pub        *rsa.PublicKey
		sessionKey string
		want       string
	}{
		// The session key is random: read with another key it is either
		// too big a number for that key or padding that does not check.
		{"other key", ct.Bytes(), other, enc.SessionKey, "bad padding|out of range"},
		{"truncated", ct.Bytes()[:ct.Len()-3], &priv.PublicKey, enc.SessionKey, "multiple of 16"},
		{"empty", nil, &priv.PublicKey, enc.SessionKey, "empty"},
		{"no colon", ct.Bytes(), &priv.PublicKey, ivOnly, "base64(iv):base64(key)"},
		{"two colons", ct.Bytes(), &priv.PublicKey, enc.SessionKey + ":x", "base64(iv):base64(key)"},
		{"short iv", ct.Bytes(), &priv.PublicKey, "AAAA:" + strings.SplitN(enc.SessionKey, ":", 2)[1], "iv is not 16 bytes"},
		{"short key", ct.Bytes(), &priv.PublicKey, ivOnly + ":AAAA", "want 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Decrypt(bytes.NewReader(tt.ct), new(bytes.Buffer), tt.pub, tt.sessionKey)
			// want lists the acceptable messages, separated by |.
			if err == nil || !slices.ContainsFunc(strings.Split(tt.want, "|"), func(w string) bool { return strings.Contains(err.Error(), w) }) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestEncryptBundle(t *testing.T) {
	priv := testKey()
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "bundle.zip")
	plain := []byte("PK\x03\x04 not really a zip, but bytes are bytes")
	if err := os.WriteFile(zipPath, plain, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bundle.zip.enc")
	enc, err := EncryptBundle(zipPath, out, priv)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got bytes.Buffer
	if err := Decrypt(f, &got, &priv.PublicKey, enc.SessionKey); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), plain) {
		t.Error("decrypted file differs from the zip")
	}
	if enc.KeyID != KeyID(&priv.PublicKey) {
		t.Errorf("KeyID = %q", enc.KeyID)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d files, want the zip and its encrypted copy only", len(entries))
	}
}

func TestEncryptBundleRejects(t *testing.T) {
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "bundle.zip")
	if err := os.WriteFile(zipPath, []byte("zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, zip, out string
		key            *rsa.PrivateKey
		want           string
	}{
		{"no key", zipPath, filepath.Join(dir, "a.enc"), nil, "no private key"},
		{"1024-bit key", zipPath, filepath.Join(dir, "b.enc"), small, "only accepts 2048-bit"},
		{"missing zip", filepath.Join(dir, "nope.zip"), filepath.Join(dir, "c.enc"), testKey(), "no such file"},
		{"missing out dir", zipPath, filepath.Join(dir, "no", "d.enc"), testKey(), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := EncryptBundle(tt.zip, tt.out, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
			if _, err := os.Stat(tt.out); err == nil {
				t.Error("output file exists after a failure")
			}
		})
	}
}

func TestLoadPrivateKey(t *testing.T) {
	priv := testKey()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec8, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, b []byte, h map[string]string) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Headers: h, Bytes: b}))
	}
	tests := []struct {
		name, content, want string // want "" means the key loads
	}{
		{"pkcs1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(priv), nil), ""},
		{"pkcs8", pemOf("PRIVATE KEY", pkcs8, nil), ""},
		{"pkcs8 after text", "comment line\n" + pemOf("PRIVATE KEY", pkcs8, nil), ""},
		{"public pkcs1", string(PublicKeyPEM(&priv.PublicKey)), "this is the public key"},
		{"ec", pemOf("PRIVATE KEY", ec8, nil), "needs an RSA key"},
		{"passphrase", pemOf("RSA PRIVATE KEY", []byte("x"), map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}), "passphrase"},
		{"pkcs8 encrypted", pemOf("ENCRYPTED PRIVATE KEY", []byte("x"), nil), "passphrase"},
		{"broken der", pemOf("RSA PRIVATE KEY", []byte("x"), nil), "parse PKCS#1"},
		{"certificate", pemOf("CERTIFICATE", []byte("x"), nil), "not an RSA private key"},
		{"not pem", "MIIEpAIBAAKCAQEA", "no PEM block"},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, string(rune('a'+i))+".pem")
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadPrivateKey(p)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !got.Equal(priv) {
					t.Error("loaded another key")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), p) {
				t.Errorf("err = %v does not name the file", err)
			}
		})
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("a missing file loaded")
	}
}

// rawPublic is c^e mod n, left-padded to the key size.
func rawPublic(pub *rsa.PublicKey, c []byte) []byte {
	m := new(big.Int).Exp(new(big.Int).SetBytes(c), big.NewInt(int64(pub.E)), pub.N)
	return m.FillBytes(make([]byte, pub.Size()))
}

// FuzzDecryptChecksum feeds outside-made checksums to the device-side
// decoder: it must return an error or a 64-digit digest, never panic.
func FuzzDecryptChecksum(f *testing.F) {
	pub := vectorKey(f)
	f.Add(vectorChecksum)
	f.Add(vectorDigest)
	f.Fuzz(func(t *testing.T, checksum string) {
		sum, err := DecryptChecksum(pub, checksum)
		if err == nil && len(sum) != 64 {
			t.Fatalf("digest %q is not 64 hex digits", sum)
		}
	})
}
