package webhook_test

import (
	"net/url"
	"testing"

	"github.com/otaship/ota/internal/webhook"
)

// FuzzCheckURL: an accepted URL is always an absolute http(s) URL with a
// host, whatever an admin (or a stolen token) sends.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example.com/x", "http://127.0.0.1:8080", "ftp://x", "", "http://%", "HTTPS://A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if webhook.CheckURL(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("CheckURL accepted %q (scheme %q, host %q, err %v)", raw, u.Scheme, u.Host, err)
		}
	})
}
