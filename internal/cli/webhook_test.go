package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/otaship/ota/internal/webhook"
	"github.com/otaship/ota/pkg/ota"
)

func TestWebhookCommands(t *testing.T) {
	e := newTestEnv(t)
	var mu sync.Mutex
	secret := ""
	var gotBad, got int
	status := http.StatusNoContent
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got++
		if !webhook.Verify(secret, body, r.Header.Get(ota.WebhookSignatureHeader)) {
			gotBad++
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rcv.Close)

	// Without --secret the generated secret is the only stdout line.
	add := e.mustRun("webhook", "add", rcv.URL+"/hook", "--all-apps")
	mu.Lock()
	secret = strings.TrimSpace(add.stdout)
	mu.Unlock()
	if !strings.HasPrefix(secret, "whsec_") || strings.Contains(secret, "\n") {
		t.Fatalf("webhook add stdout = %q, want the secret alone", add.stdout)
	}
	if !strings.Contains(add.err, "not shown again") || !strings.Contains(add.err, "every app") {
		t.Errorf("webhook add stderr = %q", add.err)
	}
	id := strings.Fields(strings.TrimPrefix(add.err, "Added webhook "))[0]

	// With --secret nothing secret is printed; filters are kept.
	js := e.mustRun("webhook", "add", "https://hooks.example.com/x", "--secret", "a-secret-of-mine-123",
		"--event", "halt", "--event", "rollback", "--app-id", testAppID, "-o", "json")
	var created ota.WebhookCreated
	if err := json.Unmarshal([]byte(js.stdout), &created); err != nil {
		t.Fatalf("add -o json printed %q: %v", js.stdout, err)
	}
	if created.AppID != testAppID || strings.Join(created.Events, ",") != "halt,rollback" || created.Secret != "a-secret-of-mine-123" {
		t.Errorf("created = %+v", created)
	}

	list := e.mustRun("webhook", "list")
	for _, want := range []string{id, rcv.URL + "/hook", created.ID, "halt, rollback", testAppID} {
		if !strings.Contains(list.stdout, want) {
			t.Errorf("webhook list lacks %q:\n%s", want, list.stdout)
		}
	}
	if strings.Contains(list.stdout, secret) || strings.Contains(list.stdout, "a-secret-of-mine") {
		t.Errorf("webhook list shows a secret:\n%s", list.stdout)
	}

	test := e.mustRun("webhook", "test", id)
	if !strings.Contains(test.stdout, "delivered (204)") {
		t.Errorf("webhook test printed %q", test.stdout)
	}
	mu.Lock()
	if got != 1 || gotBad != 0 {
		t.Errorf("receiver got %d requests, %d badly signed; want 1 good", got, gotBad)
	}
	status = http.StatusBadGateway
	mu.Unlock()
	if r := e.run("", "webhook", "test", id); r.code != ExitError || !strings.Contains(r.stdout, "failed: receiver answered 502") {
		t.Errorf("failing test: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.err)
	}
	log := e.mustRun("webhook", "deliveries", id)
	if !strings.Contains(log.stdout, "failed: receiver answered 502") || !strings.Contains(log.stdout, "delivered (204)") {
		t.Errorf("deliveries:\n%s", log.stdout)
	}

	e.mustRun("webhook", "rm", id)
	if r := e.run("", "webhook", "rm", id); r.code == 0 || !strings.Contains(r.err, "does not exist") {
		t.Errorf("second rm: exit %d, stderr %q", r.code, r.err)
	}
	for _, args := range [][]string{
		{"webhook", "add"},
		{"webhook", "add", "ftp://example.com/x"},
		{"webhook", "rm"},
		{"webhook", "test", "a", "b"},
		{"webhook", "deliveries", "x", "--limit", "-1"},
	} {
		if r := e.run("", args...); r.code != ExitUsage {
			t.Errorf("otactl %s: exit %d, want %d; stderr %q", strings.Join(args, " "), r.code, ExitUsage, r.err)
		}
	}
	if r := e.run("", "webhook", "add", "https://x.example/h", "--secret", "short"); r.code == 0 || !strings.Contains(r.err, "16") {
		t.Errorf("short secret: exit %d, stderr %q", r.code, r.err)
	}
}
