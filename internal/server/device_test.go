package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/otaship/ota/pkg/ota"
)

func TestUpdatesMalformed(t *testing.T) {
	f := newConfFixture(t)
	big := `{"platform":"ios","pad":"` + strings.Repeat("x", int(f.env.cfg.MaxJSONBytes)) + `"}`
	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"invalid JSON", `{"platform":`, http.StatusBadRequest, ota.ErrCodeInvalidJSON},
		{"empty body", "", http.StatusBadRequest, ota.ErrCodeInvalidJSON},
		{"blank body", " \n", http.StatusBadRequest, ota.ErrCodeInvalidJSON},
		{"array instead of object", `[` + mustMarshal(t, confRequest(nil)) + `]`, http.StatusBadRequest, ota.ErrCodeInvalidJSON},
		{"string instead of object", `"hello"`, http.StatusBadRequest, ota.ErrCodeInvalidJSON},
		{"trailing data", mustMarshal(t, confRequest(nil)) + `x`, http.StatusBadRequest, ota.ErrCodeInvalidJSON},
		{"wrong type for a known key", `{"is_emulator":"no"}`, http.StatusBadRequest, ota.ErrCodeInvalidJSON},
		{"oversized body", big, http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge},
	}
	for _, path := range []string{"/updates", "/check", "/channel_self"} {
		for _, tt := range tests {
			t.Run(path+" "+tt.name, func(t *testing.T) {
				method := http.MethodPost
				if path == "/channel_self" {
					method = http.MethodPut
				}
				wantStatus(t, f.env.device(method, path, tt.body), tt.status, tt.code)
			})
		}
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUpdatesLenient(t *testing.T) {
	f := newConfFixture(t)
	tests := []struct {
		name string
		body any
		want func(*testing.T, *httptest.ResponseRecorder)
	}{
		{"unknown fields are accepted", confRequest(map[string]any{"install_source": "app_store", "future_key": map[string]any{"a": 1}}),
			func(t *testing.T, r *httptest.ResponseRecorder) { wantSuccess(t, r, f.prod) }},
		{"plugin v5 body without is_emulator, is_prod or defaultChannel",
			confRequest(map[string]any{"is_emulator": nil, "is_prod": nil, "defaultChannel": nil, "plugin_version": "5.0.0"}),
			func(t *testing.T, r *httptest.ResponseRecorder) { wantSuccess(t, r, f.prod) }},
		{"upper-case device id", confRequest(map[string]any{"device_id": strings.ToUpper(confDevice)}),
			func(t *testing.T, r *httptest.ResponseRecorder) { wantSuccess(t, r, f.prod) }},
		{"missing app_id uses the default app", confRequest(map[string]any{"app_id": nil}),
			func(t *testing.T, r *httptest.ResponseRecorder) { wantSuccess(t, r, f.prod) }},
		{"unknown app is a 200 failure", confRequest(map[string]any{"app_id": "com.unknown"}),
			func(t *testing.T, r *httptest.ResponseRecorder) {
				wantRefusal(t, r, ota.UpdUnknownApp, ota.KindFailed, nil)
			}},
		{"missing device_id", confRequest(map[string]any{"device_id": nil}),
			func(t *testing.T, r *httptest.ResponseRecorder) {
				wantRefusal(t, r, ota.UpdMissingInfo, ota.KindFailed, nil)
			}},
		{"native version not semver", confRequest(map[string]any{"version_build": "1.0.0.0"}),
			func(t *testing.T, r *httptest.ResponseRecorder) {
				wantRefusal(t, r, ota.UpdSemverError, ota.KindFailed, nil)
			}},
		{"native version unknown", confRequest(map[string]any{"version_build": "unknown"}),
			func(t *testing.T, r *httptest.ResponseRecorder) {
				wantRefusal(t, r, ota.UpdUnknownVersionBuild, ota.KindFailed, nil)
			}},
		{"old worker's minimal body, new version", `{"version_build":"1.0.0","channel":"production"}`,
			func(t *testing.T, r *httptest.ResponseRecorder) { wantSuccess(t, r, f.prod) }},
		{"old worker's minimal body, up to date", `{"version_build":"1.1.0","channel":"beta"}`,
			func(t *testing.T, r *httptest.ResponseRecorder) {
				wantRefusal(t, r, ota.UpdNoNewVersion, ota.KindUpToDate, nil)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want(t, f.env.device(http.MethodPost, "/updates", tt.body))
		})
	}
}

func TestStatsEndpoint(t *testing.T) {
	many := make([]map[string]any, maxStatsEvents+1)
	for i := range many {
		many[i] = map[string]any{"app_id": testApp, "action": "ping"}
	}
	tests := []struct {
		name     string
		body     any
		status   int
		code     string
		wantRows int
	}{
		{"object", confRequest(map[string]any{"action": "set"}), http.StatusOK, "", 1},
		{"array", []any{confRequest(map[string]any{"action": "set"}), confRequest(map[string]any{"action": "x"})}, http.StatusOK, "", 2},
		{"empty array", `[]`, http.StatusOK, "", 0},
		{"event of an unknown app is accepted", confRequest(map[string]any{"app_id": "com.unknown", "action": "set"}), http.StatusOK, "", 0},
		{"not JSON", `hello`, http.StatusBadRequest, ota.ErrCodeInvalidJSON, 0},
		{"number", `42`, http.StatusBadRequest, ota.ErrCodeInvalidJSON, 0},
		{"broken array", `[{"action":"set"},`, http.StatusBadRequest, ota.ErrCodeInvalidJSON, 0},
		{"array of strings", `["set"]`, http.StatusBadRequest, ota.ErrCodeInvalidJSON, 0},
		{"empty body", ``, http.StatusBadRequest, ota.ErrCodeInvalidJSON, 0},
		{"too many events", many, http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newConfFixture(t)
			rec := f.env.device(http.MethodPost, "/stats", tt.body)
			wantStatus(t, rec, tt.status, tt.code)
			if tt.status == http.StatusOK {
				wantJSON(t, rec, map[string]any{"status": "ok"})
			}
			stats, err := f.env.store.Stats(f.ctx, testApp, time.Time{}, 2000)
			if err != nil {
				t.Fatal(err)
			}
			if len(stats) != tt.wantRows {
				t.Errorf("stored %d events, want %d", len(stats), tt.wantRows)
			}
		})
	}
}

// TestStatsStoredAsNormalised: whichever way an event is stored (the
// device's bytes, or encoded again because otad changed it or the body
// needed encoding/json), reading it back gives the normalised event:
// device id lowercased, the default app filled in, metadata bounded,
// unknown fields dropped.
func TestStatsStoredAsNormalised(t *testing.T) {
	plain := `{"platform":"android","device_id":"dev-1","app_id":"com.example.app","version_name":"1.0.1","action":"set","timestamp":5,"metadata":{"k":"v"}}`
	bigMeta := `{"device_id":"dev-5","app_id":"com.example.app","action":"x","metadata":{` + strings.Repeat(`"k":"v",`, 1) + `"` + strings.Repeat("k", maxStatsMetaKeyLen+1) + `":"v"}}`
	body := "[" + strings.Join([]string{
		plain,
		`{"device_id":"DEV-2","app_id":"com.example.app","action":"set"}`,
		`{"device_id":"dev-3","action":"set"}`,
		`{"device_id":"dev-4","app_id":"com.example.app","action":"set","extra":{"junk":[1,2,3]}}`,
		bigMeta,
	}, ",") + "]"
	want := []ota.StatsEvent{
		{DeviceInfo: ota.DeviceInfo{Platform: "android", DeviceID: "dev-1", AppID: testApp, VersionName: "1.0.1"}, Action: "set", Timestamp: 5, Metadata: map[string]string{"k": "v"}},
		{DeviceInfo: ota.DeviceInfo{DeviceID: "dev-2", AppID: testApp}, Action: "set"},
		{DeviceInfo: ota.DeviceInfo{DeviceID: "dev-3", AppID: testApp}, Action: "set"},
		{DeviceInfo: ota.DeviceInfo{DeviceID: "dev-4", AppID: testApp}, Action: "set"},
		{DeviceInfo: ota.DeviceInfo{DeviceID: "dev-5", AppID: testApp}, Action: "x", Metadata: map[string]string{"k": "v"}},
	}
	for _, tt := range []struct{ name, body string }{
		{"plain batch", body},
		// A space makes encoding/json decode the whole batch.
		{"batch for encoding/json", "[ " + body[1:]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newConfFixture(t)
			wantStatus(t, f.env.device(http.MethodPost, "/stats", tt.body), http.StatusOK, "")
			// One event alone, as old plugins send it.
			wantStatus(t, f.env.device(http.MethodPost, "/stats", plain), http.StatusOK, "")
			stats, err := f.env.store.Stats(f.ctx, testApp, time.Time{}, 100)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]ota.StatsEvent, len(stats))
			for i, st := range stats {
				got[i] = st.Event
				if st.Received.IsZero() {
					t.Errorf("event %d stored without its time", i)
				}
			}
			if w := append(slices.Clone(want), want[0]); !reflect.DeepEqual(got, w) {
				t.Fatalf("stored events:\n got %+v\nwant %+v", got, w)
			}
		})
	}
}

func TestStatsMetadataBounded(t *testing.T) {
	f := newConfFixture(t)
	meta := map[string]string{strings.Repeat("k", maxStatsMetaKeyLen+1): "dropped", "long": strings.Repeat("é", maxStatsMetaValueLn)}
	for i := range 40 {
		meta[fmt.Sprintf("key%02d", i)] = "v"
	}
	ev := confRequest(map[string]any{"action": "app_crash", "metadata": meta})
	wantStatus(t, f.env.device(http.MethodPost, "/stats", ev), http.StatusOK, "")
	stats, err := f.env.store.Stats(f.ctx, testApp, time.Time{}, 10)
	if err != nil || len(stats) != 1 {
		t.Fatalf("stats = %v, %v", stats, err)
	}
	got := stats[0].Event.Metadata
	if len(got) != maxStatsMetaKeys {
		t.Errorf("kept %d metadata keys, want %d", len(got), maxStatsMetaKeys)
	}
	for k, v := range got {
		if len(k) > maxStatsMetaKeyLen || len(v) > maxStatsMetaValueLn || !utf8.ValidString(v) {
			t.Errorf("metadata %q=%q breaks the bounds", k, v)
		}
	}
}

func TestBoundMetadata(t *testing.T) {
	small := map[string]string{"a": "b"}
	if got := boundMetadata(small); len(got) != 1 || got["a"] != "b" {
		t.Errorf("small map changed: %v", got)
	}
	if got := boundMetadata(map[string]string{}); got != nil {
		t.Errorf("empty map = %v, want nil", got)
	}
	if got := truncateUTF8("aé", 2); got != "a" {
		t.Errorf("truncateUTF8 split a character: %q", got)
	}
	if got := truncateUTF8("abc", 5); got != "abc" {
		t.Errorf("truncateUTF8 changed a short string: %q", got)
	}
}

func TestLegacyChannelPlugin(t *testing.T) {
	tests := map[string]bool{
		"4.1.0": true, "5.0.0": true, "5.33.9": true, "5.34.0": false, "6.0.0": true, "6.34.2": false,
		"7.25.0": true, "7.34.1": false, "8.0.0": false, "8.51.14": false, "8.51.14-beta.1": false,
		"": false, "garbage": false, "6": true,
	}
	for v, want := range tests {
		if got := legacyChannelPlugin(v); got != want {
			t.Errorf("legacyChannelPlugin(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestChannelSelfLegacyPlugin(t *testing.T) {
	f := newConfFixture(t)
	legacy := func(changes map[string]any) map[string]any {
		changes["plugin_version"] = "6.20.0"
		return confRequest(changes)
	}
	// setChannel stores a server-side override...
	wantJSON(t, f.env.device(http.MethodPost, "/channel_self", legacy(map[string]any{"channel": "beta"})), map[string]any{"status": "ok"})
	wantSuccess(t, f.env.device(http.MethodPost, "/updates", legacy(map[string]any{})), f.beta)
	// ...which getChannel reports...
	wantJSON(t, f.env.device(http.MethodPut, "/channel_self", legacy(map[string]any{})),
		map[string]any{"channel": "beta", "status": "override", "allowSet": true})
	// ...a private channel is still refused and stores nothing...
	wantJSON(t, f.env.device(http.MethodPost, "/channel_self", legacy(map[string]any{"channel": "internal"})),
		map[string]any{"error": "channel_self_set_not_allowed", "message": "This channel does not allow devices to self associate"})
	wantSuccess(t, f.env.device(http.MethodPost, "/updates", legacy(map[string]any{})), f.beta)
	// ...and choosing the public default removes the override.
	wantJSON(t, f.env.device(http.MethodPost, "/channel_self", legacy(map[string]any{"channel": "production"})), map[string]any{"status": "ok"})
	wantSuccess(t, f.env.device(http.MethodPost, "/updates", legacy(map[string]any{})), f.prod)
	wantJSON(t, f.env.device(http.MethodPost, "/channel_self", legacy(map[string]any{"channel": "production"})), map[string]any{"status": "ok"})
	// A legacy call without a usable device id is malformed.
	wantStatus(t, f.env.device(http.MethodPost, "/channel_self", legacy(map[string]any{"channel": "beta", "device_id": nil})),
		http.StatusBadRequest, ota.ErrCodeInvalidName)
	// A modern plugin never stores anything.
	wantJSON(t, f.env.device(http.MethodPost, "/channel_self", confRequest(map[string]any{"channel": "beta"})),
		map[string]any{"status": "ok", "allowSet": true})
	wantSuccess(t, f.env.device(http.MethodPost, "/updates", confRequest(nil)), f.prod)
}

func TestChannelSelfRefusals(t *testing.T) {
	f := newConfFixture(t)
	t.Run("POST unknown app", func(t *testing.T) {
		wantJSON(t, f.env.device(http.MethodPost, "/channel_self", confRequest(map[string]any{"app_id": "com.unknown", "channel": "beta"})),
			map[string]any{"error": "channel_not_found", "message": "Cannot find channel"})
	})
	t.Run("PUT with a channel that does not resolve", func(t *testing.T) {
		for _, ch := range []string{"internal", "nope"} {
			wantStatus(t, f.env.device(http.MethodPut, "/channel_self", confRequest(map[string]any{"defaultChannel": ch})),
				http.StatusBadRequest, ota.ChNotFound)
		}
	})
	t.Run("PUT unknown app", func(t *testing.T) {
		wantStatus(t, f.env.device(http.MethodPut, "/channel_self", confRequest(map[string]any{"app_id": "com.unknown"})),
			http.StatusBadRequest, ota.ChNotFound)
	})
	t.Run("GET unknown app", func(t *testing.T) {
		wantStatus(t, f.env.device(http.MethodGet, "/channel_self?app_id=com.unknown&platform=ios", nil), http.StatusNotFound, ota.ErrCodeAppNotFound)
	})
	t.Run("DELETE without a device id", func(t *testing.T) {
		wantStatus(t, f.env.device(http.MethodDelete, "/channel_self?app_id="+testApp, nil), http.StatusBadRequest, ota.ErrCodeInvalidName)
	})
	t.Run("DELETE with a broken body", func(t *testing.T) {
		wantStatus(t, f.env.device(http.MethodDelete, "/channel_self", `{"device_id":`), http.StatusBadRequest, ota.ErrCodeInvalidJSON)
	})
	t.Run("DELETE for an unknown app", func(t *testing.T) {
		wantJSON(t, f.env.device(http.MethodDelete, "/channel_self?app_id=com.unknown&device_id=abc", nil), map[string]any{"status": "ok"})
	})
}

func TestChannelSelfListFilters(t *testing.T) {
	f := newConfFixture(t)
	f.env.patch(testApp, "beta", ota.ChannelPolicyPatch{Android: ptrTo(false), AllowEmulator: ptrTo(false)})
	f.env.patch(testApp, "production", ota.ChannelPolicyPatch{AllowDev: ptrTo(false)})
	names := func(q url.Values) string {
		t.Helper()
		rec := f.env.device(http.MethodGet, "/channel_self?"+q.Encode(), nil)
		var list []ota.ChannelListEntry
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil {
			t.Fatalf("status %d, body %s", rec.Code, rec.Body.String())
		}
		var out []string
		for _, e := range list {
			out = append(out, e.Name)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		q    url.Values
		want string
	}{
		{url.Values{"app_id": {testApp}, "platform": {"ios"}}, "production,beta"},
		{url.Values{"platform": {"ios"}}, "production,beta"}, // default app
		{url.Values{"app_id": {testApp}, "platform": {"android"}}, "production"},
		{url.Values{"app_id": {testApp}, "platform": {"ios"}, "is_emulator": {"true"}}, "production"},
		{url.Values{"app_id": {testApp}, "platform": {"ios"}, "is_prod": {"false"}}, "beta"},
		{url.Values{"app_id": {testApp}, "platform": {"ios"}, "is_prod": {"false"}, "is_emulator": {"true"}}, ""},
	}
	for _, tt := range tests {
		if got := names(tt.q); got != tt.want {
			t.Errorf("GET ?%s = [%s], want [%s]", tt.q.Encode(), got, tt.want)
		}
	}
	// An empty list is still a JSON array.
	rec := f.env.device(http.MethodGet, "/channel_self?platform=ios&is_prod=false&is_emulator=true", nil)
	if got := strings.TrimSpace(rec.Body.String()); got != "[]" {
		t.Errorf("empty list = %s, want []", got)
	}
}

// TestUpdatesDuringWrites polls while releases change, for the race
// detector: readers see whole snapshots, old or new.
func TestUpdatesDuringWrites(t *testing.T) {
	f := newConfFixture(t)
	body := []byte(mustMarshal(t, confRequest(nil)))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				req := httptest.NewRequest(http.MethodPost, "/updates", bytes.NewReader(body))
				rec := f.env.serve(req)
				var r ota.UpdateResponse
				if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &r) != nil {
					t.Errorf("status %d body %s", rec.Code, rec.Body.String())
					return
				}
				if r.Version == "" || (r.Error == "" && r.URL == "") {
					t.Errorf("torn answer %s", rec.Body.String())
					return
				}
			}
		})
	}
	for i := range 5 {
		f.publishOn(t, "production", fmt.Sprintf("1.0.%d", i+2))
	}
	close(stop)
	wg.Wait()
	rec := f.env.device(http.MethodPost, "/updates", confRequest(nil))
	var r ota.UpdateResponse
	_ = json.Unmarshal(rec.Body.Bytes(), &r)
	if r.Version != "1.0.6" {
		t.Errorf("after the writes: offered %q, want 1.0.6", r.Version)
	}
}

// TestUpdatesHandlerAllocs keeps the hot path light: a whole update check
// through the router (request, decode, decide, encode) stays under a small
// allocation budget.
func TestUpdatesHandlerAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	f := newConfFixture(t)
	body := []byte(mustMarshal(t, confRequest(nil)))
	h := f.env.srv.Handler()
	allocs := testing.AllocsPerRun(200, func() {
		req := httptest.NewRequest(http.MethodPost, "/updates", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
	})
	t.Logf("%.0f allocations per update check", allocs)
	// 32 today (38 with -race), most of them net/http's and echo's:
	// the request, its header map, the context, the request id.
	if allocs > 40 {
		t.Errorf("%.0f allocations per update check, want at most 40", allocs)
	}
}

// BenchmarkUpdatesHandler is one plugin update check through the whole
// router (middleware, decode, decide, answer), without the network: the
// part of /updates that is otad's own.
func BenchmarkUpdatesHandler(b *testing.B) {
	env := newTestEnv(b)
	env.publish(testApp, "production", "1.0.1", nil)
	// The test logger writes debug lines; otad runs at info, where device
	// polls are not logged.
	env.srv.log = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	raw, err := json.Marshal(confRequest(nil))
	if err != nil {
		b.Fatal(err)
	}
	h := env.srv.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/updates", bytes.NewReader(raw))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkUpdatesWatch is BenchmarkUpdatesHandler with 4,096 devices
// polling in turn, with the per-device bookkeeping of silent-failure
// detection and adoption on (otad as it runs) and off (as before it),
// side by side: half the devices are offered the active release, half run
// it already.
func BenchmarkUpdatesWatch(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			env := newTestEnv(b)
			env.publish(testApp, "production", "1.0.1", nil)
			env.srv.log = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
			env.srv.watch.off = mode == "off"
			bodies := make([][]byte, 4096)
			for i := range bodies {
				running := "1.0.0"
				if i%2 == 1 {
					running = "1.0.1"
				}
				raw, err := json.Marshal(confRequest(map[string]any{"device_id": fmt.Sprintf("%08x-2c3e-4d5b-9a65-2f4f1a1e7c11", i), "version_name": running}))
				if err != nil {
					b.Fatal(err)
				}
				bodies[i] = raw
			}
			h := env.srv.Handler()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/updates", bytes.NewReader(bodies[i%len(bodies)]))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
				i++
			}
		})
	}
}
