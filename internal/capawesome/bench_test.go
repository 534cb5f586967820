package capawesome_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// checkRequests are one update check of each plugin for the same device
// and state (a device on 1.0.0 offered 1.0.2), through otad's whole
// router without the network.
func checkRequests(t testing.TB, e *env) (capgo func() *http.Request, capawesome func() *http.Request) {
	body, err := json.Marshal(map[string]any{
		"platform": "ios", "device_id": deviceID, "app_id": testApp, "custom_id": "",
		"version_build": "1.0.0", "version_code": "1", "version_os": "17.5", "version_name": "1.0.0",
		"plugin_version": "8.51.14", "is_emulator": false, "is_prod": true, "defaultChannel": "",
	})
	if err != nil {
		t.Fatal(err)
	}
	latest := "/v1/apps/" + testApp + "/bundles/latest?" + iosQuery(nil)
	return func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/updates", bytes.NewReader(body))
		}, func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, latest, nil)
			r.Header.Set("X-Capawesome-Device-Id", deviceID)
			return r
		}
}

// TestLatestHandlerAllocs keeps a Capawesome check about as light as the
// other plugin's: the whole request through the router, within a small
// allocation budget of /updates' own.
func TestLatestHandlerAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	c := newConfEnv(t)
	h := c.srv.Handler()
	capgo, capawesome := checkRequests(t, c.env)
	count := func(mk func() *http.Request) float64 {
		return testing.AllocsPerRun(200, func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, mk())
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		})
	}
	a, b := count(capgo), count(capawesome)
	t.Logf("allocations per check: /updates %.0f, /v1/apps/…/bundles/latest %.0f", a, b)
	if b > a+15 {
		t.Errorf("a Capawesome check allocates %.0f times, /updates %.0f; want at most 15 more", b, a)
	}
}

// BenchmarkCheck compares one update check of each plugin, side by side
// in one run: the same device, state and answer (an offer of 1.0.2),
// through the whole router (middleware, decode, decide, encode).
func BenchmarkCheck(b *testing.B) {
	c := newConfEnv(b)
	h := c.srv.Handler()
	capgo, capawesome := checkRequests(b, c.env)
	for _, bc := range []struct {
		name string
		mk   func() *http.Request
	}{{"updates", capgo}, {"capawesome-latest", capawesome}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, bc.mk())
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
