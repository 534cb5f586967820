package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/store/bolt/bolttest"
	"github.com/otaship/ota/internal/webhook"
	"github.com/otaship/ota/pkg/ota"
)

// receiver is a loopback webhook receiver that checks signatures and
// answers with the statuses it is given, in order (then 200).
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	status []int
	got    []ota.WebhookPayload
	bad    int // requests with a wrong signature
	done   chan struct{}
	want   int
}

func newReceiver(t *testing.T, secret string, want int, status ...int) (*receiver, *httptest.Server) {
	r := &receiver{t: t, secret: secret, status: status, done: make(chan struct{}), want: want}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.t.Errorf("read body: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !webhook.Verify(r.secret, body, req.Header.Get(ota.WebhookSignatureHeader)) {
		r.bad++
	}
	var p ota.WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		r.t.Errorf("payload is not JSON: %v", err)
	}
	r.got = append(r.got, p)
	code := http.StatusOK
	if len(r.status) > 0 {
		code, r.status = r.status[0], r.status[1:]
	}
	w.WriteHeader(code)
	if len(r.got) == r.want {
		close(r.done)
	}
}

func (r *receiver) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("receiver did not get the expected requests")
	}
}

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeSleep records the waits asked for and returns at once.
type fakeSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeSleep) sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	return ctx.Err()
}

// setup makes a dispatcher over a store holding hooks. Test receivers are
// on loopback, so private targets are allowed (target_test.go covers the
// refusal).
func setup(t *testing.T, o webhook.Options, hooks ...store.StoredWebhook) (*bolt.Store, *webhook.Dispatcher) {
	t.Helper()
	o.AllowPrivate = true
	st := bolttest.New(t, bolt.Options{})
	for _, h := range hooks {
		if err := st.CreateWebhook(context.Background(), h); err != nil {
			t.Fatal(err)
		}
	}
	d := webhook.New(st, o)
	t.Cleanup(d.Close)
	return st, d
}

func TestRetryAfterFailureIsSignedAndLogged(t *testing.T) {
	rcv, srv := newReceiver(t, "s3cret", 2, http.StatusInternalServerError)
	fs := &fakeSleep{}
	hook := store.StoredWebhook{Secret: "s3cret", Webhook: ota.Webhook{ID: "wh1", URL: srv.URL + "/hook", CreatedAt: epoch}}
	st, d := setup(t, webhook.Options{Sleep: fs.sleep}, hook)
	ev := ota.Event{Seq: 42, Time: epoch, Actor: "alice", Type: ota.EventRollback, AppID: "app", Channel: "production",
		From: "1.0.1", To: "1.0.0", Note: "bad build"}
	if err := d.Dispatch(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	rcv.wait(t)
	d.Close() // waits for the log write of the second attempt

	if rcv.bad != 0 {
		t.Errorf("%d requests had a wrong signature", rcv.bad)
	}
	want := ota.WebhookPayload{ID: "42", Type: "rollback", Time: epoch, AppID: "app", Channel: "production",
		From: "1.0.1", To: "1.0.0", Actor: "alice", Note: "bad build"}
	for i, p := range rcv.got {
		if p != want {
			t.Errorf("request %d payload = %+v, want %+v", i, p, want)
		}
	}
	if len(fs.waits) != 1 || fs.waits[0] != time.Second {
		t.Errorf("backoff waits = %v, want [1s]", fs.waits)
	}
	log, err := st.Deliveries(context.Background(), "wh1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 {
		t.Fatalf("delivery log has %d entries, want 2: %+v", len(log), log)
	}
	// Newest first: the retry that worked, then the 500.
	if !log[0].OK || log[0].Attempt != 2 || log[0].Status != 200 || log[0].EventID != "42" {
		t.Errorf("second attempt logged as %+v", log[0])
	}
	if log[1].OK || log[1].Attempt != 1 || log[1].Status != 500 || log[1].Error == "" {
		t.Errorf("first attempt logged as %+v", log[1])
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	rcv, srv := newReceiver(t, "k", 3, 500, 502, 503, 504)
	fs := &fakeSleep{}
	hook := store.StoredWebhook{Secret: "k", Webhook: ota.Webhook{ID: "wh1", URL: srv.URL, CreatedAt: epoch}}
	st, d := setup(t, webhook.Options{Sleep: fs.sleep, MaxAttempts: 3}, hook)
	if err := d.Dispatch(context.Background(), ota.Event{Seq: 1, Type: ota.EventUpload, AppID: "a"}); err != nil {
		t.Fatal(err)
	}
	rcv.wait(t)
	d.Close()
	if len(rcv.got) != 3 {
		t.Errorf("receiver got %d requests, want 3", len(rcv.got))
	}
	if len(fs.waits) != 2 || fs.waits[0] != time.Second || fs.waits[1] != 2*time.Second {
		t.Errorf("backoff waits = %v, want [1s 2s]", fs.waits)
	}
	log, _ := st.Deliveries(context.Background(), "wh1", 0)
	if len(log) != 3 || log[0].OK || log[0].Status != 503 {
		t.Errorf("log = %+v, want 3 failed attempts, the last a 503", log)
	}
}

func TestFilters(t *testing.T) {
	rcv, srv := newReceiver(t, "k", 3)
	hooks := []store.StoredWebhook{
		{Secret: "k", Webhook: ota.Webhook{ID: "all", URL: srv.URL, CreatedAt: epoch}},
		{Secret: "k", Webhook: ota.Webhook{ID: "other-app", URL: srv.URL, AppID: "other", CreatedAt: epoch}},
		{Secret: "k", Webhook: ota.Webhook{ID: "halts", URL: srv.URL, Events: []string{ota.EventHalt}, CreatedAt: epoch}},
	}
	_, d := setup(t, webhook.Options{}, hooks...)
	for _, ev := range []ota.Event{
		{Seq: 1, Type: ota.EventPolicy, AppID: "app"}, // not in the default set
		{Seq: 2, Type: ota.EventUpload, AppID: "app"}, // "all" only
		{Seq: 3, Type: ota.EventHalt, AppID: "app"},   // "all" and "halts"
	} {
		if err := d.Dispatch(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	rcv.wait(t)
	d.Close()
	var ids []string
	for _, p := range rcv.got {
		ids = append(ids, p.ID)
	}
	if len(ids) != 3 {
		t.Errorf("deliveries of events %v, want 2, 3 and 3", ids)
	}
}

func TestBackoff(t *testing.T) {
	d := webhook.New(nil, webhook.Options{BaseDelay: time.Second, MaxDelay: 10 * time.Second})
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 30: 10 * time.Second} {
		if got := d.Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://hooks.example.com/otad", true},
		{"http://127.0.0.1:9000/x?token=1", true},
		{"ftp://example.com/", false},
		{"file:///etc/passwd", false},
		{"javascript:alert(1)", false},
		{"https://", false},
		{"/relative", false},
		{"", false},
		{"http://%zz", false},
	} {
		if err := webhook.CheckURL(tc.url); (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

func TestSignature(t *testing.T) {
	body := []byte(`{"id":"1"}`)
	// Reference value from: printf '{"id":"1"}' | openssl dgst -sha256 -hmac key
	const want = "sha256=77cb8fd154ecfa2865657b2915c997c624ee47fe122e8a8bb91b10a09b47fb3c"
	got := webhook.Sign("key", body)
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	if !webhook.Verify("key", body, got) || webhook.Verify("other", body, got) || webhook.Verify("key", []byte(`{"id":"2"}`), got) {
		t.Error("Verify accepts a wrong secret or body, or refuses the right one")
	}
}
