package daemon

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files
// and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "otad test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile = writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	s := startServe(t, t.TempDir(), nil, "--tls-cert", certFile, "--tls-key", keyFile)
	url := "https://" + strings.TrimPrefix(s.url, "http://")

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("GET over TLS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("status %d, TLS %v; body %s", resp.StatusCode, resp.TLS != nil, body)
	}
	if resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %x, want 1.2 or later", resp.TLS.Version)
	}

	// Plain HTTP on the TLS port gets no API answer.
	plain, err := http.Get(s.url + "/healthz")
	if err == nil {
		b, _ := io.ReadAll(plain.Body)
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP was served: %s", b)
		}
	}
	// The default public URL (download URLs, the first-start box) is https.
	if !strings.Contains(s.stderr.String(), `"public_url":"https://127.0.0.1:`) {
		t.Errorf("the derived public URL is not https:\n%s", s.stderr.String())
	}
	// otad healthcheck finds the TLS listener from the same settings.
	tlsEnv := map[string]string{"OTAD_ADDR": strings.TrimPrefix(s.url, "http://"), "OTAD_TLS_CERT": certFile, "OTAD_TLS_KEY": keyFile}
	if r := otad(t, tlsEnv, "", "healthcheck"); r.code != exitOK {
		t.Errorf("healthcheck of a TLS otad: exit %d, stderr %q", r.code, r.stderr)
	}
	if code := s.stop(); code != 0 {
		t.Errorf("exit code %d; stderr:\n%s", code, s.stderr.String())
	}
}

func TestServeTLSErrors(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t)
	otherCert, _, _ := selfSigned(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--tls-cert", certFile}, "tls-cert and tls-key go together"},
		{"key without cert", []string{"--tls-key", keyFile}, "tls-cert and tls-key go together"},
		{"missing file", []string{"--tls-cert", filepath.Join(dir, "nope.pem"), "--tls-key", keyFile}, "load TLS certificate"},
		{"key of another certificate", []string{"--tls-cert", otherCert, "--tls-key", keyFile}, "load TLS certificate"},
		{"not PEM", []string{"--tls-cert", writeFile(t, dir, "junk.pem", "junk"), "--tls-key", keyFile}, "load TLS certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tt.args...)
			res := otad(t, nil, "", args...)
			if res.code == 0 {
				t.Fatalf("otad serve %v started", tt.args)
			}
			if !strings.Contains(res.stderr, tt.want) {
				t.Errorf("stderr %q does not say %q", res.stderr, tt.want)
			}
		})
	}
}

func TestDeviceRateLimitConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    float64
		wantErr string
	}{
		{"default", nil, nil, defaultDeviceRate, ""},
		{"flag", []string{"--device-rate-limit", "2.5"}, nil, 2.5, ""},
		{"environment", nil, map[string]string{"OTAD_DEVICE_RATE_LIMIT": "50"}, 50, ""},
		{"off", nil, map[string]string{"OTAD_DEVICE_RATE_LIMIT": "0"}, 0, ""},
		{"flag beats environment", []string{"--device-rate-limit", "3"}, map[string]string{"OTAD_DEVICE_RATE_LIMIT": "50"}, 3, ""},
		{"negative", nil, map[string]string{"OTAD_DEVICE_RATE_LIMIT": "-1"}, 0, "is negative"},
		{"not a number", nil, map[string]string{"OTAD_DEVICE_RATE_LIMIT": "20/s"}, 0, "want requests per second"},
		{"infinite", nil, map[string]string{"OTAD_DEVICE_RATE_LIMIT": "Inf"}, 0, "want requests per second"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(parseServeFlags(t, tt.args...).Flags(), mapEnv(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DeviceRateLimit != tt.want {
				t.Errorf("DeviceRateLimit = %v, want %v", c.DeviceRateLimit, tt.want)
			}
		})
	}
}

// TestCertReload: a certificate renewed in place is served from the next
// check on; a pair that does not load keeps the previous certificate and
// is logged.
func TestCertReload(t *testing.T) {
	certA, keyA, _ := selfSigned(t)
	certB, keyB, _ := selfSigned(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cp := func(src, dst string, mod time.Time) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		// Renewals are minutes apart; the test's writes are not.
		if err := os.Chtimes(dst, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	cp(certA, certFile, t0)
	cp(keyA, keyFile, t0)
	var logs bytes.Buffer
	now := t0
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	key := func() string {
		t.Helper()
		c, err := r.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return string(leaf.RawSubjectPublicKeyInfo)
	}
	a := key()

	// Renewed: served once the check interval has passed, not before.
	cp(certB, certFile, t0.Add(time.Minute))
	cp(keyB, keyFile, t0.Add(time.Minute))
	now = now.Add(certCheckInterval / 2)
	if key() != a {
		t.Fatal("the renewed certificate was read before the check interval passed")
	}
	now = now.Add(certCheckInterval)
	b := key()
	if b == a {
		t.Fatal("the renewed certificate is not served after the check interval")
	}
	if !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Errorf("no reload logged:\n%s", logs.String())
	}

	// Half renewed (a certificate whose key is not there yet): B stays.
	cp(certA, certFile, t0.Add(2*time.Minute))
	now = now.Add(certCheckInterval)
	if key() != b {
		t.Fatal("a certificate that does not match its key replaced the one in service")
	}
	if !strings.Contains(logs.String(), "does not load") {
		t.Errorf("the failed reload is not logged:\n%s", logs.String())
	}
	// Then the key arrives: A is served.
	cp(keyA, keyFile, t0.Add(3*time.Minute))
	now = now.Add(certCheckInterval)
	if key() != a {
		t.Fatal("the completed renewal is not served")
	}
}
