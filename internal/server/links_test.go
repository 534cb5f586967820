package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	downloads "github.com/otaship/ota/internal/download"
)

// fakeBucket signs URLs without a server, for unit tests of the hot path
// (the S3 backend's own signatures are tested against the real server in
// s3_test.go).
type fakeBucket struct{}

func (fakeBucket) ObjectPath(key string) string { return "sha256/" + key[:2] + "/" + key }

func (fakeBucket) Presign(_ context.Context, key, name string, ttl time.Duration) (string, error) {
	return "https://bucket.example/" + key + "?X-Amz-Expires=" + ttl.String() + "&name=" + name, nil
}

// TestUpdatesHandlerAllocsPresigned: with presigned URLs the prepared
// answer is still sent as prepared while its URL is fresh, so an update
// check costs what it costs with otad's own URLs (TestUpdatesHandlerAllocs).
func TestUpdatesHandlerAllocsPresigned(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	f := newConfFixtureWith(t, func(c *Config) {
		l, err := downloads.New(downloads.Config{PublicURL: c.PublicURL, Bucket: fakeBucket{}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		c.Downloads = l
	})
	body := []byte(mustMarshal(t, confRequest(nil)))
	h := f.env.srv.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/updates", bytes.NewReader(body)))
	if !strings.Contains(rec.Body.String(), "https://bucket.example/") {
		t.Fatalf("/updates answer %s has no presigned URL", rec.Body)
	}
	allocs := testing.AllocsPerRun(200, func() {
		req := httptest.NewRequest(http.MethodPost, "/updates", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
	})
	t.Logf("%.0f allocations per update check with presigned URLs", allocs)
	if allocs > 40 {
		t.Errorf("%.0f allocations per update check, want at most 40 as with otad's own URLs", allocs)
	}
}
