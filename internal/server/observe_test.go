package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/webhook"
	"github.com/otaship/ota/pkg/ota"
)

const testMetricsToken = "metrics-token-0123456789"

func scrapeMetrics(t *testing.T, env *testEnv) string {
	t.Helper()
	rec := env.do(http.MethodGet, "/metrics", nil, "Authorization", "Bearer "+testMetricsToken)
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestMetricsAfterTraffic(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MetricsToken = testMetricsToken; c.Webhooks.AllowPrivate = true })
	v1 := "/api/v1/apps/" + testApp + "/bundles"
	zip := zipOf(map[string]string{"index.html": "<html>1.0.1</html>"})
	wantStatus(t, env.upload(v1, zip, "version", "1.0.1", "channel", "production"), http.StatusCreated, "")
	wantStatus(t, env.upload(v1, zip, "version", "1.0.1", "channel", "production"), http.StatusOK, "") // a retry

	rec := env.device(http.MethodPost, "/updates", confRequest(nil))
	var ans ota.UpdateResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || ans.Version != "1.0.1" {
		t.Fatalf("update check: %s", rec.Body)
	}
	env.device(http.MethodPost, "/updates", confRequest(map[string]any{"version_name": "1.0.1"}))
	env.offered(testApp, "production", "1.0.1", "other-device") // as a check would
	env.device(http.MethodPost, "/updates", confRequest(map[string]any{"app_id": "com.made.up"}))
	stats := []map[string]any{
		{"action": "set", "app_id": testApp, "device_id": confDevice, "version_name": "1.0.1", "platform": "ios", "version_build": "1.0.0"},
		{"action": "update_fail", "app_id": testApp, "device_id": "other-device", "version_name": "1.0.1", "platform": "ios", "version_build": "1.0.0"},
		{"action": "update_fail", "app_id": testApp, "device_id": "other-device", "version_name": "9.9.9-made-up", "platform": "ios", "version_build": "1.0.0"},
		{"action": "brand_new_action", "app_id": testApp, "device_id": confDevice, "version_name": "1.0.1", "platform": "ios", "version_build": "1.0.0"},
	}
	wantStatus(t, env.device(http.MethodPost, "/stats", stats), http.StatusOK, "")
	dl := env.do(http.MethodGet, strings.TrimPrefix(ans.URL, testPublic), nil, "Authorization", "")
	if dl.Code != http.StatusOK || dl.Body.Len() != len(zip) {
		t.Fatalf("download: status %d, %d bytes", dl.Code, dl.Body.Len())
	}
	env.do(http.MethodGet, "/no/such/route/12345", nil)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(rcv.Close)
	hook := decode[ota.WebhookCreated](t, env.do(http.MethodPost, "/api/v1/webhooks", ota.WebhookRequest{URL: rcv.URL}))
	wantStatus(t, env.do(http.MethodPost, "/api/v1/webhooks/"+hook.ID+"/test", nil), http.StatusOK, "")

	out := scrapeMetrics(t, env)
	checkDashboard(t, out)
	for _, want := range []string{
		`otad_http_requests_total{method="POST",route="/api/v1/apps/:app/bundles",status="201"} 1`,
		`otad_http_requests_total{method="POST",route="/api/v1/apps/:app/bundles",status="200"} 1`,
		`otad_http_requests_total{method="POST",route="/updates",status="200"} 3`,
		`otad_http_requests_total{method="GET",route="/*",status="404"} 1`,
		`otad_http_request_duration_seconds_count{method="POST",route="/stats",status="200"} 1`,
		`otad_update_answers_total{app="com.example.app",channel="production",kind="success",version="1.0.1"} 1`,
		`otad_update_answers_total{app="com.example.app",channel="production",kind="up_to_date",version=""} 1`,
		`otad_update_answers_total{app="unknown",channel="",kind="failed",version=""} 1`,
		`otad_stats_events_total{action="set"} 1`,
		`otad_stats_events_total{action="update_fail"} 2`,
		`otad_stats_events_total{action="other"} 1`,
		`otad_bundle_reports_total{app="com.example.app",outcome="installed",version="1.0.1"} 1`,
		`otad_bundle_reports_total{app="com.example.app",outcome="failed",version="1.0.1"} 1`,
		`otad_bundle_reports_total{app="com.example.app",outcome="failed",version="unknown"} 1`,
		`otad_uploads_total{app="com.example.app",kind="web",result="created"} 1`,
		`otad_uploads_total{app="com.example.app",kind="web",result="existing"} 1`,
		fmt.Sprintf(`otad_upload_bytes_total %d`, len(zip)),
		`otad_bundle_downloads_total{status="200"} 1`,
		fmt.Sprintf(`otad_bundle_bytes_served_total %d`, len(zip)),
		`otad_version_devices{app="com.example.app",version="1.0.1"} 2`,
		`otad_version_failed_devices{app="com.example.app",version="1.0.1"} 1`,
		`otad_webhook_attempts_total{result="ok"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("scrape lacks %s", want)
		}
	}
	for _, leak := range []string{"com.made.up", "brand_new_action", "9.9.9-made-up", "12345"} {
		if strings.Contains(out, leak) {
			t.Errorf("a value chosen by a client, %q, became a label", leak)
		}
	}
}

func TestMetricsAccess(t *testing.T) {
	t.Run("token", func(t *testing.T) {
		env := newTestEnv(t, func(c *Config) { c.MetricsToken = testMetricsToken })
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + env.token, testMetricsToken} {
			rec := env.do(http.MethodGet, "/metrics", nil, "Authorization", auth)
			wantStatus(t, rec, http.StatusUnauthorized, ota.ErrCodeUnauthorized)
		}
		scrapeMetrics(t, env)
	})
	t.Run("no token: not on the main listener", func(t *testing.T) {
		env := newTestEnv(t)
		for _, auth := range []string{"", "Bearer " + env.token, "Bearer " + testMetricsToken} {
			wantStatus(t, env.do(http.MethodGet, "/metrics", nil, "Authorization", auth), http.StatusNotFound, ota.ErrCodeNotFound)
		}
		rec := httptest.NewRecorder()
		env.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "otad_http_requests_total") {
			t.Errorf("metrics handler: %d %s", rec.Code, rec.Body)
		}
	})
}

var requestIDRe = regexp.MustCompile(`request_id=(\S+)`)

func TestLogsCarryRequestIDAndNoSecrets(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "production", "1.0.0", nil)
	env.publish(testApp, "production", "1.0.1", nil)

	login := env.do(http.MethodPost, "/api/v1/auth/login", map[string]string{"username": testUser, "password": testPassword}, "Authorization", "")
	wantStatus(t, login, http.StatusOK, "")
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(login.Body.Bytes(), &tok); err != nil || tok.Token == "" {
		t.Fatalf("login answer %s", login.Body)
	}
	rb := env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/production/rollback", nil, "Authorization", "Bearer "+tok.Token)
	wantStatus(t, rb, http.StatusOK, "")

	logs := env.logs.String()
	for name, rec := range map[string]*httptest.ResponseRecorder{"login": login, "rollback": rb} {
		id := rec.Header().Get("X-Request-Id")
		if id == "" {
			t.Fatalf("%s: no X-Request-Id header", name)
		}
		var lines []string
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, id) {
				lines = append(lines, l)
			}
		}
		// The access line and the handler's own line (login / rolled back).
		if len(lines) < 2 {
			t.Errorf("%s: %d log lines carry its request id, want at least 2:\n%s", name, len(lines), logs)
		}
		access := false
		for _, l := range lines {
			if m := requestIDRe.FindStringSubmatch(l); m == nil || m[1] != id {
				t.Errorf("%s: line with another request_id: %s", name, l)
			}
			if strings.Contains(l, "msg=request ") && strings.Contains(l, "status=200") && strings.Contains(l, "route=") &&
				strings.Contains(l, "duration=") && strings.Contains(l, "bytes=") && strings.Contains(l, "remote=") {
				access = true
			}
		}
		if !access {
			t.Errorf("%s: no access line with route, status, duration, bytes and remote:\n%s", name, strings.Join(lines, "\n"))
		}
	}
	for _, secret := range []string{testPassword, tok.Token, env.token, "Bearer"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains a secret %q:\n%s", secret, logs)
		}
	}
}

// hookReceiver is a loopback webhook receiver. It checks each signature
// over the raw body, fails the first failFirst requests with 500, and
// collects the payloads.
type hookReceiver struct {
	secret    string
	mu        sync.Mutex
	failFirst int
	n         int
	badSig    int
	got       []ota.WebhookPayload
	ok        map[string]int // event id → successful deliveries
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	if !webhook.Verify(h.secret, body, r.Header.Get(ota.WebhookSignatureHeader)) {
		h.badSig++
	}
	var p ota.WebhookPayload
	_ = json.Unmarshal(body, &p)
	h.got = append(h.got, p)
	if h.n <= h.failFirst {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	h.ok[p.ID]++
}

func (h *hookReceiver) delivered() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for k, v := range h.ok {
		out[k] = v
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestWebhooksEndToEnd(t *testing.T) {
	var waits []time.Duration
	var wmu sync.Mutex
	env := newTestEnv(t, func(c *Config) {
		c.Webhooks = webhook.Options{AllowPrivate: true, Sleep: func(ctx context.Context, d time.Duration) error {
			wmu.Lock()
			waits = append(waits, d)
			wmu.Unlock()
			return nil
		}}
	})
	t.Cleanup(env.srv.Close)
	const secret = "receiver-secret-0123"
	rcv := &hookReceiver{secret: secret, failFirst: 1, ok: map[string]int{}}
	hs := httptest.NewServer(rcv)
	t.Cleanup(hs.Close)

	// Creation: refusals first.
	for _, tt := range []struct {
		req  ota.WebhookRequest
		code int
	}{
		{ota.WebhookRequest{URL: "ftp://example.com/x"}, 400},
		{ota.WebhookRequest{URL: "not a url"}, 400},
		{ota.WebhookRequest{URL: hs.URL, Secret: "short"}, 400},
		{ota.WebhookRequest{URL: hs.URL, Events: []string{"upload", "nonsense"}}, 400},
		{ota.WebhookRequest{URL: hs.URL, AppID: "bad app"}, 400},
	} {
		rec := env.do(http.MethodPost, "/api/v1/webhooks", tt.req)
		if rec.Code != tt.code {
			t.Errorf("create %+v: status %d, want %d: %s", tt.req, rec.Code, tt.code, rec.Body)
		}
	}
	rec := env.do(http.MethodPost, "/api/v1/webhooks", ota.WebhookRequest{URL: hs.URL + "/hook", Secret: secret})
	wantStatus(t, rec, http.StatusCreated, "")
	created := decode[ota.WebhookCreated](t, rec)
	if created.Secret != secret || created.ID == "" || created.CreatedBy != testUser {
		t.Errorf("created = %+v", created)
	}
	// A generated secret is shown once, and never listed.
	gen := decode[ota.WebhookCreated](t, env.do(http.MethodPost, "/api/v1/webhooks",
		ota.WebhookRequest{URL: "https://other.example/h", AppID: "com.other", Events: []string{ota.EventHalt}}))
	if !strings.HasPrefix(gen.Secret, "whsec_") {
		t.Errorf("generated secret %q", gen.Secret)
	}
	list := env.do(http.MethodGet, "/api/v1/webhooks", nil)
	if strings.Contains(list.Body.String(), secret) || strings.Contains(list.Body.String(), gen.Secret) || strings.Contains(list.Body.String(), "secret") {
		t.Errorf("the list shows a secret: %s", list.Body)
	}
	if hooks := decode[[]ota.Webhook](t, list); len(hooks) != 2 {
		t.Errorf("list has %d webhooks, want 2", len(hooks))
	}
	if strings.Contains(env.logs.String(), secret) || strings.Contains(env.logs.String(), gen.Secret) {
		t.Error("a webhook secret is in the log")
	}

	// A real upload over HTTP: its events reach the receiver, the first
	// attempt fails with 500 and the retry succeeds.
	zip := zipOf(map[string]string{"index.html": "1.0.1"})
	wantStatus(t, env.upload("/api/v1/apps/"+testApp+"/bundles", zip, "version", "1.0.1", "channel", "production"), http.StatusCreated, "")
	zip2 := zipOf(map[string]string{"index.html": "1.0.2"})
	wantStatus(t, env.upload("/api/v1/apps/"+testApp+"/bundles", zip2, "version", "1.0.2", "channel", "production"), http.StatusCreated, "")
	wantStatus(t, env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/production/rollback", nil), http.StatusOK, "")

	page := decode[ota.HistoryPage](t, env.do(http.MethodGet, "/api/v1/history?limit=100", nil))
	want := map[string]bool{}
	for _, ev := range page.Events {
		if webhook.Wants(created.Webhook, ev) {
			want[fmt.Sprint(ev.Seq)] = true
		}
	}
	if len(want) < 3 {
		t.Fatalf("history has %d webhook events: %+v", len(want), page.Events)
	}
	waitFor(t, "every event delivered", func() bool { return len(rcv.delivered()) == len(want) })
	env.srv.Close() // waits for the log writes of attempts in flight

	got := rcv.delivered()
	for id := range want {
		if got[id] != 1 {
			t.Errorf("event %s delivered %d times, want once", id, got[id])
		}
	}
	if rcv.badSig != 0 {
		t.Errorf("%d requests had a bad signature", rcv.badSig)
	}
	var rollback *ota.WebhookPayload
	for i := range rcv.got {
		if rcv.got[i].Type == ota.EventRollback {
			rollback = &rcv.got[i]
		}
	}
	if rollback == nil || rollback.AppID != testApp || rollback.Channel != "production" || rollback.From != "1.0.2" ||
		rollback.To != "1.0.1" || rollback.Actor != testUser {
		t.Errorf("rollback payload = %+v", rollback)
	}
	wmu.Lock()
	if len(waits) != 1 || waits[0] != time.Second {
		t.Errorf("backoff waits = %v, want one of 1s", waits)
	}
	wmu.Unlock()

	// The delivery log has the failed attempt and its successful retry.
	ds := decode[[]ota.WebhookDelivery](t, env.do(http.MethodGet, "/api/v1/webhooks/"+created.ID+"/deliveries", nil))
	if len(ds) != len(want)+1 {
		t.Fatalf("delivery log has %d entries, want %d: %+v", len(ds), len(want)+1, ds)
	}
	first := rcv.got[0].ID
	var failed, retried bool
	for _, d := range ds {
		if d.EventID != first {
			continue
		}
		switch {
		case d.Attempt == 1 && !d.OK && d.Status == 500 && d.Error != "":
			failed = true
		case d.Attempt == 2 && d.OK && d.Status == 200:
			retried = true
		}
	}
	if !failed || !retried {
		t.Errorf("log of event %s lacks the failed first attempt or the retry: %+v", first, ds)
	}

	// Test sends one signed test event now and logs it.
	tr := env.do(http.MethodPost, "/api/v1/webhooks/"+created.ID+"/test", nil)
	wantStatus(t, tr, http.StatusOK, "")
	if d := decode[ota.WebhookDelivery](t, tr); !d.OK || d.EventType != ota.EventTest {
		t.Errorf("test delivery = %+v", d)
	}
	wantStatus(t, env.do(http.MethodPost, "/api/v1/webhooks/wh_nope/test", nil), http.StatusNotFound, ota.ErrCodeNotFound)
	wantStatus(t, env.do(http.MethodGet, "/api/v1/webhooks/wh_nope/deliveries", nil), http.StatusNotFound, ota.ErrCodeNotFound)
	wantStatus(t, env.do(http.MethodDelete, "/api/v1/webhooks/"+created.ID, nil), http.StatusNoContent, "")
	wantStatus(t, env.do(http.MethodDelete, "/api/v1/webhooks/"+created.ID, nil), http.StatusNotFound, ota.ErrCodeNotFound)
	wantStatus(t, env.do(http.MethodGet, "/api/v1/webhooks", nil, "Authorization", ""), http.StatusUnauthorized, ota.ErrCodeUnauthorized)
}

func TestWebhooksRefuseCITokens(t *testing.T) {
	env := newTestEnv(t)
	ci := env.createToken(ota.TokenCreateRequest{Name: "deploy"}).Token
	created := decode[ota.WebhookCreated](t, env.do(http.MethodPost, "/api/v1/webhooks", ota.WebhookRequest{URL: "https://h.example/x?key=k"}))
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/webhooks"},
		{http.MethodPost, "/api/v1/webhooks"},
		{http.MethodDelete, "/api/v1/webhooks/" + created.ID},
		{http.MethodPost, "/api/v1/webhooks/" + created.ID + "/test"},
		{http.MethodGet, "/api/v1/webhooks/" + created.ID + "/deliveries"},
	} {
		var body any
		if r.method == http.MethodPost {
			body = ota.WebhookRequest{URL: "https://evil.example/"}
		}
		rec := env.do(r.method, r.path, body, "Authorization", "Bearer "+ci)
		wantStatus(t, rec, http.StatusForbidden, ota.ErrCodeForbidden)
	}
	if strings.Contains(env.logs.String(), "key=k") {
		t.Error("the webhook URL's query is in the log")
	}
}

// checkDashboard keeps docs/grafana-dashboard.json honest: every series a
// panel queries is in scrape, the metrics of a server after traffic.
func checkDashboard(t *testing.T, scrape string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	exported := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) (\S+)`).FindAllStringSubmatch(scrape, -1) {
		exported[m[1]] = true
		if m[2] == "histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[m[1]+s] = true
			}
		}
	}
	series := regexp.MustCompile(`\b(otad_[a-z_]+|go_[a-z_]+|process_[a-z_]+)`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range series.FindAllString(tg.Expr, -1) {
				n++
				if !exported[name] {
					t.Errorf("dashboard panel %q queries %s, which otad does not export", p.Title, name)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("the dashboard queries only %d series", n)
	}
}

// TestPanicIsLoggedAndCounted: observe sits outside Recover, so a panic's
// 500 has its access line, its error line with the same request id, and
// its count.
func TestPanicIsLoggedAndCounted(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MetricsToken = testMetricsToken })
	env.srv.e.GET("/test-panic", func(echo.Context) error { panic("boom") })
	rec := env.do(http.MethodGet, "/test-panic", nil)
	wantStatus(t, rec, http.StatusInternalServerError, ota.ErrCodeInternal)
	id := rec.Header().Get(echo.HeaderXRequestID)
	var access, failed bool
	for _, l := range strings.Split(env.logs.String(), "\n") {
		if !strings.Contains(l, "request_id="+id) {
			continue
		}
		access = access || strings.Contains(l, "msg=request ") && strings.Contains(l, "status=500")
		failed = failed || strings.Contains(l, "request failed") && strings.Contains(l, "boom")
	}
	if !access || !failed {
		t.Errorf("access line %v, error line %v for request %s:\n%s", access, failed, id, env.logs)
	}
	if out := scrapeMetrics(t, env); !strings.Contains(out, `otad_http_requests_total{method="GET",route="/test-panic",status="500"} 1`) {
		t.Error("the panic's 500 is not counted")
	}
}

// TestWebhookOnAutoHalt: a halt otad makes by itself, from device stats,
// reaches webhooks like an admin's change.
func TestWebhookOnAutoHalt(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Webhooks.AllowPrivate = true }) // a loopback receiver
	t.Cleanup(env.srv.Close)
	got := make(chan ota.WebhookPayload, 10)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p ota.WebhookPayload
		_ = json.NewDecoder(r.Body).Decode(&p)
		got <- p
	}))
	t.Cleanup(rcv.Close)
	env.publish(testApp, "production", "1.0.0", nil)
	env.publish(testApp, "production", "1.1.0", nil)
	wantStatus(t, env.do(http.MethodPatch, "/api/v1/apps/"+testApp+"/channels/production",
		map[string]any{"auto_halt": true, "min_devices": 1, "halt_on_failure_rate": 0.5}), http.StatusOK, "")
	wantStatus(t, env.do(http.MethodPost, "/api/v1/webhooks", ota.WebhookRequest{URL: rcv.URL, Events: []string{ota.EventHalt}}), http.StatusCreated, "")

	stat := map[string]any{"action": "update_fail", "app_id": testApp, "device_id": "dev-1", "version_name": "1.1.0",
		"old_version_name": "1.0.0", "platform": "android", "version_build": "1.0.0", "plugin_version": "8.0.0"}
	env.offered(testApp, "production", "1.1.0", "dev-1")
	wantStatus(t, env.device(http.MethodPost, "/stats", stat), http.StatusOK, "")
	select {
	case p := <-got:
		if p.Type != ota.EventHalt || p.Actor != "otad" || p.From != "1.1.0" || p.To != "1.0.0" || p.Channel != "production" || p.Note == "" {
			t.Errorf("halt payload = %+v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no halt webhook; channel: %s", env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/channels/production", nil).Body)
	}
}
