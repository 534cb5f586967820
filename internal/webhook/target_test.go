package webhook_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/store/bolt/bolttest"
	"github.com/otaship/ota/internal/webhook"
	"github.com/otaship/ota/pkg/ota"
)

func TestPublic(t *testing.T) {
	for addr, want := range map[string]bool{
		"93.184.216.34": true, "2606:2800:220:1::1": true, "8.8.8.8": true,
		"127.0.0.1": false, "127.1.2.3": false, "::1": false, "0.0.0.0": false, "::": false,
		"10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "fd00::1": false,
		"169.254.169.254": false, "fe80::1": false, "100.64.0.1": false, "198.18.0.1": false,
		"224.0.0.1": false, "255.255.255.255": false, "::ffff:127.0.0.1": false, "::ffff:8.8.8.8": true,
		"64:ff9b::a00:1": false, "64:ff9b::808:808": true, "2002:c0a8:101::1": false, "fe80::1%eth0": false,
	} {
		if got := webhook.Public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Public(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestCheckTarget(t *testing.T) {
	resolve := map[string][]netip.Addr{
		"hooks.example.com":  {netip.MustParseAddr("93.184.216.34")},
		"internal.example":   {netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.0.0.5")},
		"metadata.example":   {netip.MustParseAddr("169.254.169.254")},
		"not-yet.example.io": nil,
	}
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		if a := resolve[host]; a != nil {
			return a, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	tests := []struct {
		url     string
		private bool // refused unless private targets are allowed
	}{
		{"https://hooks.example.com/otad", false},
		{"https://not-yet.example.io/h", false},
		{"http://93.184.216.34:8080/h", false},
		{"http://127.0.0.1:22/", true},
		{"http://[::1]:6379/", true},
		{"http://localhost:9200/", true},
		{"http://api.localhost/", true},
		{"http://169.254.169.254/latest/meta-data/", true},
		{"http://10.0.0.1/", true},
		{"http://[fe80::1%25eth0]/", true},
		{"https://internal.example/h", true},
		{"https://metadata.example/h", true},
		{"http://0.0.0.0:8080/", true},
	}
	strict := webhook.New(nil, webhook.Options{LookupIP: lookup})
	lax := webhook.New(nil, webhook.Options{LookupIP: lookup, AllowPrivate: true})
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := strict.CheckTarget(t.Context(), tt.url)
			if refused := errors.Is(err, webhook.ErrPrivateTarget); refused != tt.private {
				t.Errorf("CheckTarget = %v; refused %v, want %v", err, refused, tt.private)
			}
			if err != nil && !strings.Contains(err.Error(), "--webhook-allow-private") {
				t.Errorf("the refusal %q does not say how to allow it", err)
			}
			if err := lax.CheckTarget(t.Context(), tt.url); err != nil {
				t.Errorf("with private targets allowed: %v", err)
			}
		})
	}
}

// A webhook that reached the store with a loopback URL (added before the
// check existed, or a name that now resolves there) is refused when it is
// delivered, and the answer does not tell an open port from a closed one.
func TestDeliveryRefusesPrivateAddress(t *testing.T) {
	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(open.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()

	st := bolttest.New(t, bolt.Options{})
	p := ota.WebhookPayload{ID: "test-1", Type: ota.EventTest}
	strict := webhook.New(st, webhook.Options{})
	t.Cleanup(strict.Close)
	lax := webhook.New(st, webhook.Options{AllowPrivate: true})
	t.Cleanup(lax.Close)
	deliver := func(d *webhook.Dispatcher, url string) ota.WebhookDelivery {
		t.Helper()
		del, err := d.Send(t.Context(), store.StoredWebhook{Webhook: ota.Webhook{ID: "wh", URL: url}, Secret: "s3cret-s3cret-s3cret"}, p)
		if err != nil {
			t.Fatal(err)
		}
		return del
	}
	for _, url := range []string{open.URL, closed, "http://localhost:" + strings.Split(open.URL, ":")[2]} {
		if del := deliver(strict, url); del.OK || !strings.Contains(del.Error, "not public") {
			t.Errorf("delivery to %s: %+v, want refused as not public", url, del)
		}
	}
	if del := deliver(lax, open.URL); !del.OK {
		t.Errorf("delivery to an open port with private targets allowed: %+v", del)
	}
	// Closed port and a port that answers nothing look the same; the
	// network's own words ("connection refused") stay in the server log.
	del := deliver(lax, closed)
	if del.OK || strings.Contains(del.Error, "refused") || strings.Contains(del.Error, "127.0.0.1") {
		t.Errorf("delivery to a closed port: error %q reveals the port state or the address", del.Error)
	}
}
