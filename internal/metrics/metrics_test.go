package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/metrics"
	"github.com/otaship/ota/pkg/ota"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape status %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestSeries(t *testing.T) {
	m := metrics.New()
	m.Request("/updates", http.MethodPost, 200, 3*time.Millisecond)
	m.Request("/updates", "BREW", 999, time.Millisecond)
	m.UpdateAnswer("app", "production", "1.0.1", "success")
	m.StatsEvent("set")
	m.StatsEvent("made_up_action")
	m.BundleReport("app", "1.0.1", true)
	m.Upload("app", ota.KindWeb, true, 1000)
	m.Upload("app", ota.KindWeb, false, 1000) // a retry stores no bytes
	m.Download(200, 4096)
	m.WebhookAttempt(ota.WebhookDelivery{OK: true})
	out := scrape(t, m)
	for _, want := range []string{
		`otad_http_requests_total{method="POST",route="/updates",status="200"} 1`,
		`otad_http_requests_total{method="other",route="/updates",status="other"} 1`,
		`otad_http_request_duration_seconds_count{method="POST",route="/updates",status="200"} 1`,
		`otad_update_answers_total{app="app",channel="production",kind="success",version="1.0.1"} 1`,
		`otad_stats_events_total{action="set"} 1`,
		`otad_stats_events_total{action="other"} 1`,
		`otad_bundle_reports_total{app="app",outcome="failed",version="1.0.1"} 1`,
		`otad_uploads_total{app="app",kind="web",result="created"} 1`,
		`otad_uploads_total{app="app",kind="web",result="existing"} 1`,
		`otad_upload_bytes_total 1000`,
		`otad_bundle_downloads_total{status="200"} 1`,
		`otad_bundle_bytes_served_total 4096`,
		`otad_webhook_attempts_total{result="ok"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(out, "made_up_action") || strings.Contains(out, "BREW") {
		t.Error("a value chosen by a client became a label")
	}
}

func TestNilRecordsNothing(t *testing.T) {
	var m *metrics.Metrics
	m.Request("/", "GET", 200, 0)
	m.UpdateAnswer("a", "b", "c", "d")
	m.StatsEvent("set")
	m.Download(200, 1)
}

// TestRequestAllocs: recording an existing series must not allocate; it
// runs on every request.
func TestRequestAllocs(t *testing.T) {
	m := metrics.New()
	m.Request("/updates", http.MethodPost, 200, time.Millisecond)
	m.UpdateAnswer("app", "production", "1.0.1", "success")
	if n := testing.AllocsPerRun(100, func() {
		m.Request("/updates", http.MethodPost, 200, time.Millisecond)
		m.UpdateAnswer("app", "production", "1.0.1", "success")
	}); n > 0 {
		t.Errorf("%.0f allocations per recorded request, want 0", n)
	}
}
