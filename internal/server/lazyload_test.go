package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/otaship/ota/pkg/ota"
)

const (
	lazyOther = "com.example.other"
	lazyThird = "com.example.third"
)

// newRestartedEnv publishes three apps, then restarts the server from the
// same data directory without WarmUp, so every app starts Unloaded.
func newRestartedEnv(t *testing.T) *testEnv {
	t.Helper()
	env := newTestEnv(t)
	env.publish(testApp, "production", "1.0.1", nil)
	env.publish(testApp, "production", "1.0.2", nil)
	env.publish(lazyOther, "production", "3.0.0", nil)
	env.publish(lazyThird, "production", "5.0.0", nil)
	env.reopen()
	snap := env.srv.Snapshot()
	for _, app := range []string{testApp, lazyOther, lazyThird} {
		if !snap.IsUnloaded(app) || snap.App(app) != nil {
			t.Fatalf("after restart, app %s: unloaded=%v view=%v; want unloaded and no view", app, snap.IsUnloaded(app), snap.App(app) != nil)
		}
	}
	return env
}

// TestLazyLoadOnFirstRequest: every device endpoint answers an app that
// is not loaded yet exactly as a loaded one, loading only that app.
func TestLazyLoadOnFirstRequest(t *testing.T) {
	env := newRestartedEnv(t)

	rec := env.device(http.MethodPost, "/updates", confRequest(nil))
	var r ota.UpdateResponse
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &r) != nil || r.Version != "1.0.2" || r.URL == "" {
		t.Fatalf("first /updates after restart: status %d body %s; want an offer of 1.0.2", rec.Code, rec.Body.String())
	}
	snap := env.srv.Snapshot()
	if snap.IsUnloaded(testApp) || snap.App(testApp) == nil {
		t.Fatalf("the polled app is still unloaded")
	}
	if !snap.IsUnloaded(lazyOther) || !snap.IsUnloaded(lazyThird) {
		t.Fatalf("apps nobody asked for were loaded: unloaded=%v", snap.Unloaded)
	}

	// listChannels of another unloaded app.
	rec = env.device(http.MethodGet, "/channel_self?app_id="+lazyOther+"&platform=ios&is_emulator=false&is_prod=true", nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"production"`) {
		t.Fatalf("channel_self GET of an unloaded app: status %d body %s", rec.Code, rec.Body.String())
	}

	// A failure report about an unloaded app's version counts (when the
	// device was offered it, which outlives the restart).
	env.offered(lazyThird, "production", "5.0.0", confDevice)
	ev := confRequest(map[string]any{"app_id": lazyThird, "action": "update_fail", "version_name": "5.0.0"})
	rec = env.device(http.MethodPost, "/stats", []any{ev})
	if rec.Code != http.StatusOK {
		t.Fatalf("stats: status %d body %s", rec.Code, rec.Body.String())
	}
	if devices, failed, _ := env.srv.health.counts(lazyThird, "5.0.0"); devices != 1 || failed != 1 {
		t.Fatalf("health of an app loaded by /stats: %d devices, %d failed; want 1 and 1", devices, failed)
	}
	if n := len(env.srv.Snapshot().Unloaded); n != 0 {
		t.Fatalf("%d apps still unloaded after each was asked for", n)
	}
}

// TestWarmUpLoadsEveryApp: WarmUp leaves nothing unloaded and logs what
// it did; an app that a request loaded first is not loaded twice.
func TestWarmUpLoadsEveryApp(t *testing.T) {
	env := newRestartedEnv(t)
	env.device(http.MethodPost, "/updates", confRequest(nil))
	before := env.srv.Snapshot().App(testApp)
	env.srv.WarmUp(context.Background())
	snap := env.srv.Snapshot()
	if len(snap.Unloaded) != 0 {
		t.Fatalf("after WarmUp: unloaded %v", snap.Unloaded)
	}
	for _, app := range []string{testApp, lazyOther, lazyThird} {
		if snap.App(app) == nil || len(snap.App(app).Channels) != 1 {
			t.Fatalf("after WarmUp, app %s has no view with its channel", app)
		}
	}
	if snap.App(testApp) != before {
		t.Errorf("WarmUp rebuilt an app a request had already loaded")
	}
	if !strings.Contains(env.logs.String(), "release state loaded") {
		t.Errorf("WarmUp did not log its end; logs:\n%s", env.logs.String())
	}

	// A cancelled WarmUp stops without touching anything.
	env.reopen()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env.srv.WarmUp(ctx)
	if n := len(env.srv.Snapshot().Unloaded); n != 3 {
		t.Fatalf("a cancelled WarmUp left %d apps unloaded, want 3", n)
	}
}

// TestLazyLoadRacesWrites: loads of an unloaded app by many requests and
// by WarmUp, racing releases to it, never leave an older state in place.
func TestLazyLoadRacesWrites(t *testing.T) {
	for round := range 5 {
		env := newRestartedEnv(t)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				rec := env.device(http.MethodPost, "/updates", confRequest(nil))
				if rec.Code != http.StatusOK {
					t.Errorf("round %d: status %d body %s", round, rec.Code, rec.Body.String())
				}
			})
		}
		wg.Go(func() { env.srv.WarmUp(context.Background()) })
		last := ""
		for i := range 3 {
			last = fmt.Sprintf("1.1.%d", i)
			env.publish(testApp, "production", last, nil)
		}
		wg.Wait()
		rec := env.device(http.MethodPost, "/updates", confRequest(nil))
		var r ota.UpdateResponse
		_ = json.Unmarshal(rec.Body.Bytes(), &r)
		if r.Version != last {
			t.Fatalf("round %d: after the writes and loads, offered %q, want %s", round, r.Version, last)
		}
	}
}

// TestLazyLoadLosesToNewerWrite: a release that lands between a load's
// read and its swap wins; the load's older state is dropped.
func TestLazyLoadLosesToNewerWrite(t *testing.T) {
	env := newRestartedEnv(t)
	var once sync.Once
	env.srv.testHookAppRead = func(app string) {
		once.Do(func() { env.publish(app, "production", "1.2.0", nil) })
	}
	rec := env.device(http.MethodPost, "/updates", confRequest(nil))
	var r ota.UpdateResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || r.Version != "1.2.0" {
		t.Fatalf("offered %q (status %d); want 1.2.0, released while the app was loading", r.Version, rec.Code)
	}
}

// TestLazyLoadStoreFailure: when an app cannot be read, the device gets a
// 5xx (the plugin retries later), never a wrong answer such as
// unknown_app.
func TestLazyLoadStoreFailure(t *testing.T) {
	env := newRestartedEnv(t)
	if err := env.store.Close(); err != nil {
		t.Fatal(err)
	}
	env.store = nil // closed: the cleanup must not close it again
	rec := env.device(http.MethodPost, "/updates", confRequest(nil))
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), ota.UpdUnknownApp) {
		t.Fatalf("unreadable store: status %d body %s; want 500", rec.Code, rec.Body.String())
	}
	if !env.srv.Snapshot().IsUnloaded(testApp) {
		t.Fatalf("a failed load marked the app loaded")
	}
	// Stats for it fail as a whole, so the plugin keeps the batch.
	ev := confRequest(map[string]any{"action": "set", "version_name": "1.0.2"})
	if rec := env.device(http.MethodPost, "/stats", []any{ev}); rec.Code != http.StatusInternalServerError {
		t.Fatalf("stats with an unreadable store: status %d body %s; want 500", rec.Code, rec.Body.String())
	}
}
