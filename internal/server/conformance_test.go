package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// The conformance suite of protocol.md §9: the fixture and cases T1–T20,
// sent as JSON over the real router and checked key by key, because the
// plugin reacts to the mere presence of error/kind/message.

const confDevice = "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11"

// confFixture is §9's fixture: production (public, the app default) serves
// 1.0.1, beta (not public, self-set on) 1.1.0, internal (private) 2.0.0.
type confFixture struct {
	env                  *testEnv
	ctx                  context.Context
	prod, beta, internal ota.Bundle
	prodContent          []byte
	idProduction, idBeta int64
}

func newConfFixture(t *testing.T) *confFixture {
	t.Helper()
	return newConfFixtureWith(t)
}

// newConfFixtureWith is newConfFixture with Config changes.
func newConfFixtureWith(t *testing.T, opts ...func(*Config)) *confFixture {
	t.Helper()
	env := newTestEnv(t, opts...)
	f := &confFixture{env: env, ctx: context.Background()}
	// Big enough for a meaningful Range request (T14).
	f.prodContent = zipOf(map[string]string{"index.html": "<html>1.0.1</html>", "app.js": strings.Repeat("notifyAppReady();\n", 200)})
	f.prod = env.publish(testApp, "production", "1.0.1", f.prodContent)
	f.beta = env.publish(testApp, "beta", "1.1.0", nil)
	f.internal = env.publish(testApp, "internal", "2.0.0", nil)
	env.patch(testApp, "beta", ota.ChannelPolicyPatch{AllowSelfSet: ptrTo(true)})
	for _, name := range []string{"production", "beta"} {
		ch, err := env.store.GetChannel(f.ctx, testApp, name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "production" {
			f.idProduction = ch.ID
			if !ch.Public {
				t.Fatalf("production is not the public default: %+v", ch)
			}
		} else {
			f.idBeta = ch.ID
		}
	}
	return f
}

// publishOn makes version active on channel (publishing it first).
func (f *confFixture) publishOn(t *testing.T, channel, version string) {
	t.Helper()
	f.env.publish(testApp, channel, version, nil)
}

// rollbackTo points channel at version (or builtin) and refreshes.
func (f *confFixture) rollbackTo(t *testing.T, channel, version string) {
	t.Helper()
	if _, err := f.env.store.Rollback(f.ctx, testApp, channel, version, testUser, f.env.clock.Now()); err != nil {
		t.Fatalf("rollback %s to %s: %v", channel, version, err)
	}
	if err := f.env.srv.refreshApp(f.ctx, testApp); err != nil {
		t.Fatal(err)
	}
}

func ptrTo[T any](v T) *T { return &v }

// confRequest is §9's request R as the iOS plugin 8.51.14 sends it, with
// changes applied (a nil value deletes the key).
func confRequest(changes map[string]any) map[string]any {
	r := map[string]any{
		"platform": "ios", "device_id": confDevice, "app_id": testApp, "custom_id": "",
		"version_build": "1.0.0", "version_code": "1", "version_os": "17.5", "version_name": "1.0.0",
		"plugin_version": "8.51.14", "is_emulator": false, "is_prod": true, "defaultChannel": "",
	}
	for k, v := range changes {
		if v == nil {
			delete(r, k)
			continue
		}
		r[k] = v
	}
	return r
}

// device sends a request as the plugin does: JSON, no credentials.
func (e *testEnv) device(method, path string, body any) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do(method, path, body, "Authorization", "", "User-Agent", "CapacitorUpdater/8.51.14 (com.example.app) ios/17.5")
}

// wantJSON checks status 200 and that the body is exactly want, key for key.
func wantJSON(t *testing.T, rec *httptest.ResponseRecorder, want map[string]any) {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type = %q, want JSON", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", rec.Body.String(), err)
	}
	// Round-trip want through JSON so numbers and bools compare alike.
	raw, _ := json.Marshal(want)
	var norm map[string]any
	_ = json.Unmarshal(raw, &norm)
	if !maps.EqualFunc(got, norm, func(a, b any) bool { return jsonEq(a, b) }) {
		t.Fatalf("body = %s\nwant   %s", rec.Body.String(), raw)
	}
}

func jsonEq(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// wantRefusal checks a 200 refusal: exactly error, message (non-empty),
// kind and the given extras.
func wantRefusal(t *testing.T, rec *httptest.ResponseRecorder, code, kind string, extras map[string]any) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("status %d, body %q: want a 200 JSON object", rec.Code, rec.Body.String())
	}
	msg, _ := got["message"].(string)
	if msg == "" {
		t.Fatalf("refusal without a message: %s", rec.Body.String())
	}
	want := map[string]any{"error": code, "message": msg, "kind": kind}
	maps.Copy(want, extras)
	wantJSON(t, rec, want)
}

var (
	hex64        = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hex512       = regexp.MustCompile(`^[0-9a-f]{512}$`)
	sessionKeyRE = regexp.MustCompile(`^[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$`)
)

func wantSuccess(t *testing.T, rec *httptest.ResponseRecorder, b ota.Bundle) {
	t.Helper()
	wantJSON(t, rec, map[string]any{"version": b.Version, "url": b.URL, "checksum": b.SHA256, "session_key": ""})
	u, err := url.Parse(b.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		t.Errorf("url %q is not an absolute http(s) URL", b.URL)
	}
	if !hex64.MatchString(b.SHA256) {
		t.Errorf("checksum %q is not 64 lowercase hex", b.SHA256)
	}
}

func TestConformance(t *testing.T) {
	upToDate := func(t *testing.T, rec *httptest.ResponseRecorder) {
		t.Helper()
		wantJSON(t, rec, map[string]any{"error": "no_new_version_available", "message": "No new version available", "kind": "up_to_date"})
	}

	t.Run("T1 update available", func(t *testing.T) {
		f := newConfFixture(t)
		rec := f.env.device(http.MethodPost, "/updates", confRequest(nil))
		wantSuccess(t, rec, f.prod)
		if !strings.HasPrefix(f.prod.URL, testPublic+"/") {
			t.Errorf("url %q is not under the configured public URL", f.prod.URL)
		}
	})
	t.Run("T1 through the old /check path", func(t *testing.T) {
		f := newConfFixture(t)
		wantSuccess(t, f.env.device(http.MethodPost, "/check", confRequest(nil)), f.prod)
	})
	t.Run("T2 no new version", func(t *testing.T) {
		f := newConfFixture(t)
		upToDate(t, f.env.device(http.MethodPost, "/updates", confRequest(map[string]any{"version_name": "1.0.1"})))
	})
	t.Run("T3 builtin normalises to version_build", func(t *testing.T) {
		f := newConfFixture(t)
		upToDate(t, f.env.device(http.MethodPost, "/updates", confRequest(map[string]any{"version_name": "builtin", "version_build": "1.0.1"})))
	})
	t.Run("T4 self-settable defaultChannel", func(t *testing.T) {
		f := newConfFixture(t)
		wantSuccess(t, f.env.device(http.MethodPost, "/updates", confRequest(map[string]any{"defaultChannel": "beta"})), f.beta)
	})
	t.Run("T5 private defaultChannel without override", func(t *testing.T) {
		f := newConfFixture(t)
		rec := f.env.device(http.MethodPost, "/updates", confRequest(map[string]any{"defaultChannel": "internal"}))
		wantRefusal(t, rec, "no_channel", "failed", nil)
	})
	t.Run("T6 admin override beats defaultChannel and the public channel", func(t *testing.T) {
		f := newConfFixture(t)
		f.env.override(testApp, strings.ToUpper(confDevice), "internal")
		wantSuccess(t, f.env.device(http.MethodPost, "/updates", confRequest(map[string]any{"defaultChannel": "beta"})), f.internal)
		wantSuccess(t, f.env.device(http.MethodPost, "/updates", confRequest(nil)), f.internal)
	})
	t.Run("T7 platform disabled", func(t *testing.T) {
		f := newConfFixture(t)
		f.env.patch(testApp, "production", ota.ChannelPolicyPatch{IOS: ptrTo(false)})
		rec := f.env.device(http.MethodPost, "/updates", confRequest(nil))
		wantRefusal(t, rec, "disabled_platform_ios", "blocked", map[string]any{"version": "1.0.1", "old": "1.0.0"})
		// Android devices still update.
		rec = f.env.device(http.MethodPost, "/updates", confRequest(map[string]any{"platform": "android"}))
		wantSuccess(t, rec, f.prod)
	})
	t.Run("T8 major update blocked", func(t *testing.T) {
		f := newConfFixture(t)
		f.env.patch(testApp, "production", ota.ChannelPolicyPatch{DisableAutoUpdate: ptrTo(ota.DisableMajor)})
		f.publishOn(t, "production", "2.0.0")
		rec := f.env.device(http.MethodPost, "/updates", confRequest(nil))
		wantRefusal(t, rec, "disable_auto_update_to_major", "blocked", map[string]any{"major": true, "version": "2.0.0", "old": "1.0.0"})
	})
	t.Run("T9 under native blocked", func(t *testing.T) {
		f := newConfFixture(t)
		f.env.patch(testApp, "production", ota.ChannelPolicyPatch{DisableAutoUpdateUnderNative: ptrTo(true)})
		f.publishOn(t, "production", "0.9.0")
		rec := f.env.device(http.MethodPost, "/updates", confRequest(nil))
		wantRefusal(t, rec, "disable_auto_update_under_native", "blocked", map[string]any{"version": "0.9.0", "old": "1.0.0"})
	})
	t.Run("T10 emulator and dev builds", func(t *testing.T) {
		f := newConfFixture(t)
		f.env.patch(testApp, "production", ota.ChannelPolicyPatch{AllowEmulator: ptrTo(false), AllowDev: ptrTo(false)})
		rec := f.env.device(http.MethodPost, "/updates", confRequest(map[string]any{"is_emulator": true}))
		wantRefusal(t, rec, "disable_emulator", "blocked", map[string]any{"version": "1.0.1"})
		rec = f.env.device(http.MethodPost, "/updates", confRequest(map[string]any{"is_prod": false}))
		wantRefusal(t, rec, "disable_dev_build", "blocked", map[string]any{"version": "1.0.1"})
		// A physical prod device is still served.
		wantSuccess(t, f.env.device(http.MethodPost, "/updates", confRequest(nil)), f.prod)
	})
	t.Run("T11 revert to builtin", func(t *testing.T) {
		f := newConfFixture(t)
		f.rollbackTo(t, "production", ota.VersionBuiltin)
		rec := f.env.device(http.MethodPost, "/updates", confRequest(map[string]any{"version_name": "1.0.1"}))
		wantJSON(t, rec, map[string]any{"version": "builtin"})
		upToDate(t, f.env.device(http.MethodPost, "/updates", confRequest(nil)))
	})
	t.Run("T12 manifest bundle", func(t *testing.T) {
		f := newConfFixture(t)
		files := map[string]string{
			"index.html":    "<html>1.0.2</html>",
			"assets/app.js": strings.Repeat("CapacitorUpdater.notifyAppReady();\n", 400), // stored Brotli-compressed
		}
		var manifest []ota.ManifestFile
		for _, name := range []string{"assets/app.js", "index.html"} {
			data := []byte(files[name])
			sum := sha256Hex(data)
			body, enc := data, "raw"
			if br, ok, _ := delta.Compress(name, data); ok {
				body, enc = br, "br"
			}
			wantStatus(t, f.env.do(http.MethodPut, "/api/v1/apps/"+testApp+"/files/"+sum+"?encoding="+enc, body), http.StatusCreated, "")
			manifest = append(manifest, ota.ManifestFile{Path: name, SHA256: sum, Size: int64(len(data))})
		}
		m, _ := json.Marshal(manifest)
		body, ctype := multipartOf(t, formPart{Name: "version", Data: []byte("1.0.2")}, formPart{Name: "channel", Data: []byte("production")},
			formPart{Name: "manifest", FileName: "manifest.json", Data: m}, formPart{Name: "file", FileName: "b.zip", Data: zipOf(files)})
		wantStatus(t, f.env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/bundles", body, "Content-Type", ctype), http.StatusCreated, "")

		rec := f.env.device(http.MethodPost, "/updates", confRequest(nil))
		got := decode[map[string]any](t, rec)
		for _, k := range []string{"error", "kind", "message"} {
			if _, ok := got[k]; ok {
				t.Errorf("a success carries %q: %v", k, got)
			}
		}
		if u, _ := got["url"].(string); got["version"] != "1.0.2" || !strings.HasPrefix(u, testPublic+"/") || !hex64.MatchString(fmt.Sprint(got["checksum"])) || got["session_key"] != "" {
			t.Fatalf("answer %v; want 1.0.2 with a valid zip url, checksum and an empty session_key", got)
		}
		entries, _ := got["manifest"].([]any)
		if len(entries) != 2 {
			t.Fatalf("manifest %v; want the 2 files", got["manifest"])
		}
		for _, e := range entries {
			entry := e.(map[string]any)
			name, hash, dl := entry["file_name"].(string), entry["file_hash"].(string), entry["download_url"].(string)
			if len(entry) != 3 || !hex64.MatchString(hash) || !strings.HasPrefix(dl, testPublic+"/") {
				t.Errorf("entry %v", entry)
				continue
			}
			rec := f.env.device(http.MethodGet, strings.TrimPrefix(dl, testPublic), nil)
			data := rec.Body.Bytes()
			if strings.HasSuffix(name, ".br") {
				var err error
				if data, err = io.ReadAll(delta.NewBrotliReader(bytes.NewReader(data))); err != nil {
					t.Errorf("%s: not Brotli: %v", name, err)
				}
			}
			if rec.Code != http.StatusOK || sha256Hex(data) != hash || files[strings.TrimSuffix(name, ".br")] != string(data) {
				t.Errorf("GET %s (%s): status %d, bytes do not hash to file_hash", dl, name, rec.Code)
			}
		}
		// A plugin that cannot read manifests gets the same release as a zip.
		rec = f.env.device(http.MethodPost, "/updates", confRequest(map[string]any{"plugin_version": "6.24.0"}))
		if old := decode[map[string]any](t, rec); old["manifest"] != nil || old["version"] != "1.0.2" {
			t.Errorf("6.24.0 got %v; want the zip only", old)
		}
	})
	t.Run("T13 encrypted bundle", func(t *testing.T) {
		f := newConfFixture(t)
		ct, enc := encryptedZip(t, zipOf(map[string]string{"index.html": "<html>1.0.2</html>"}))
		wantStatus(t, f.env.upload("/api/v1/apps/"+testApp+"/bundles", ct,
			append(encFields("1.0.2", enc), "channel", "production")...), http.StatusCreated, "")
		rec := f.env.device(http.MethodPost, "/updates", confRequest(map[string]any{"key_id": enc.KeyID}))
		got := decode[map[string]any](t, rec)
		sk, _ := got["session_key"].(string)
		iv, _, _ := strings.Cut(sk, ":")
		if raw, err := base64.StdEncoding.DecodeString(iv); err != nil || len(raw) != 16 || !sessionKeyRE.MatchString(sk) {
			t.Errorf("session_key %q is not base64(16-byte IV):base64(key)", sk)
		}
		if sum, _ := got["checksum"].(string); !hex512.MatchString(sum) {
			t.Errorf("checksum %q is not 512 hex characters", sum)
		}
		wantJSON(t, rec, map[string]any{"version": "1.0.2", "url": got["url"], "checksum": enc.Checksum, "session_key": enc.SessionKey})

		const other = "MIIBCgKCAQEAqJikYizo"
		rec = f.env.device(http.MethodPost, "/updates", confRequest(map[string]any{"key_id": other}))
		wantRefusal(t, rec, "key_id_mismatch", "blocked", map[string]any{"deviceKeyId": other, "bundleKeyId": enc.KeyID})
	})
	t.Run("T14 download, whole and resumed", func(t *testing.T) {
		f := newConfFixture(t)
		rec := f.env.device(http.MethodGet, strings.TrimPrefix(f.prod.URL, testPublic), nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET bundle: status %d", rec.Code)
		}
		if sum := sha256.Sum256(rec.Body.Bytes()); hex.EncodeToString(sum[:]) != f.prod.SHA256 {
			t.Fatalf("downloaded bytes do not match the offered checksum")
		}
		rec = f.env.do(http.MethodGet, strings.TrimPrefix(f.prod.URL, testPublic), nil, "Authorization", "", "Range", "bytes=100-")
		if rec.Code != http.StatusPartialContent {
			t.Fatalf("ranged GET: status %d, want 206", rec.Code)
		}
		n := len(f.prodContent)
		if got, want := rec.Header().Get("Content-Range"), "bytes 100-"+strconv.Itoa(n-1)+"/"+strconv.Itoa(n); got != want {
			t.Errorf("Content-Range = %q, want %q", got, want)
		}
		if rec.Body.String() != string(f.prodContent[100:]) {
			t.Errorf("ranged body differs from the bundle's bytes 100-")
		}
	})
	t.Run("T15 stats batch", func(t *testing.T) {
		f := newConfFixture(t)
		body := []map[string]any{
			confRequest(map[string]any{"action": "set", "version_name": "1.0.1", "old_version_name": "1.0.0", "timestamp": 1760000000000}),
			confRequest(map[string]any{"action": "download_manifest_file_fail", "version_name": "1.0.2:assets/a.js"}),
		}
		wantJSON(t, f.env.device(http.MethodPost, "/stats", body), map[string]any{"status": "ok"})
		stats, err := f.env.store.Stats(f.ctx, testApp, time.Time{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(stats) != 2 {
			t.Fatalf("stored %d events, want 2", len(stats))
		}
		if e := stats[0].Event; e.Action != "set" || e.VersionName != "1.0.1" || e.OldVersionName != "1.0.0" || e.Timestamp != 1760000000000 || e.DeviceID != confDevice {
			t.Errorf("first event = %+v", e)
		}
		if e := stats[1].Event; update.EventVersion(e.VersionName) != "1.0.2" || e.Action != "download_manifest_file_fail" {
			t.Errorf("second event = %+v, version %q", e, update.EventVersion(e.VersionName))
		}
		if !stats[0].Received.Equal(f.env.clock.Now()) {
			t.Errorf("received = %v, want the server clock %v", stats[0].Received, f.env.clock.Now())
		}
	})
	t.Run("T16 single stats object and unknown action", func(t *testing.T) {
		f := newConfFixture(t)
		for _, action := range []string{"rate_limit_reached", "future_action"} {
			rec := f.env.device(http.MethodPost, "/stats", confRequest(map[string]any{"action": action, "version_name": "1.0.0", "old_version_name": ""}))
			wantJSON(t, rec, map[string]any{"status": "ok"})
		}
		stats, err := f.env.store.Stats(f.ctx, testApp, time.Time{}, 10)
		if err != nil || len(stats) != 2 || stats[1].Event.Action != "future_action" {
			t.Fatalf("stored %+v, %v; want both events", stats, err)
		}
	})
	t.Run("T17 setChannel", func(t *testing.T) {
		f := newConfFixture(t)
		wantJSON(t, f.env.device(http.MethodPost, "/channel_self", confRequest(map[string]any{"channel": "beta"})),
			map[string]any{"status": "ok", "allowSet": true})
		wantJSON(t, f.env.device(http.MethodPost, "/channel_self", confRequest(map[string]any{"channel": "internal"})),
			map[string]any{"error": "channel_self_set_not_allowed", "message": "This channel does not allow devices to self associate"})
		wantJSON(t, f.env.device(http.MethodPost, "/channel_self", confRequest(map[string]any{"channel": "nope"})),
			map[string]any{"error": "channel_not_found", "message": "Cannot find channel"})
		// The public default: the device drops its stored channel and
		// follows the default from then on.
		wantJSON(t, f.env.device(http.MethodPost, "/channel_self", confRequest(map[string]any{"channel": "production"})),
			map[string]any{"status": "ok", "unset": true})
		wantJSON(t, f.env.device(http.MethodPost, "/channel_self", confRequest(nil)),
			map[string]any{"error": "missing_channel", "message": "Cannot find channel in body"})
	})
	t.Run("T18 getChannel", func(t *testing.T) {
		f := newConfFixture(t)
		wantJSON(t, f.env.device(http.MethodPut, "/channel_self", confRequest(map[string]any{"defaultChannel": "beta"})),
			map[string]any{"channel": "beta", "status": "default", "allowSet": true})
		wantJSON(t, f.env.device(http.MethodPut, "/channel_self", confRequest(nil)),
			map[string]any{"channel": "production", "status": "default", "allowSet": false})
		f.env.override(testApp, confDevice, "internal")
		wantJSON(t, f.env.device(http.MethodPut, "/channel_self", confRequest(nil)),
			map[string]any{"channel": "internal", "status": "override", "allowSet": false})
	})
	t.Run("T19 listChannels", func(t *testing.T) {
		f := newConfFixture(t)
		q := url.Values{"app_id": {testApp}, "platform": {"ios"}, "is_emulator": {"false"}, "is_prod": {"true"}, "device_id": {confDevice}}
		rec := f.env.device(http.MethodGet, "/channel_self?"+q.Encode(), nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
		want := `[{"id":` + strconv.Itoa(int(f.idProduction)) + `,"name":"production","public":true,"allow_self_set":false},` +
			`{"id":` + strconv.Itoa(int(f.idBeta)) + `,"name":"beta","public":false,"allow_self_set":true}]`
		if got := strings.TrimSpace(rec.Body.String()); got != want {
			t.Fatalf("body = %s\nwant   %s", got, want)
		}
		var raw []map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		if _, ok := raw[0]["id"].(float64); !ok {
			t.Errorf("id is %T, want a JSON number", raw[0]["id"])
		}
	})
	t.Run("T20 unsetChannel by query and by body", func(t *testing.T) {
		f := newConfFixture(t)
		// The pin a legacy plugin set itself (its setChannel) is the
		// device's to remove.
		setBeta := func() {
			t.Helper()
			wantJSON(t, f.env.device(http.MethodPost, "/channel_self", confRequest(map[string]any{"channel": "beta", "plugin_version": "6.20.0"})),
				map[string]any{"status": "ok"})
			wantSuccess(t, f.env.device(http.MethodPost, "/updates", confRequest(nil)), f.beta)
		}
		setBeta()
		q := url.Values{"app_id": {testApp}, "device_id": {confDevice}}
		wantJSON(t, f.env.device(http.MethodDelete, "/channel_self?"+q.Encode(), nil), map[string]any{"status": "ok"})
		wantSuccess(t, f.env.device(http.MethodPost, "/updates", confRequest(nil)), f.prod)

		setBeta()
		wantJSON(t, f.env.device(http.MethodDelete, "/channel_self", confRequest(nil)), map[string]any{"status": "ok"})
		wantSuccess(t, f.env.device(http.MethodPost, "/updates", confRequest(nil)), f.prod)
		// Nothing left to remove is still ok.
		wantJSON(t, f.env.device(http.MethodDelete, "/channel_self", confRequest(nil)), map[string]any{"status": "ok"})

		// An admin's pin stands (otad's rule; see TestChannelSelfAdminPin).
		f.env.override(testApp, confDevice, "internal")
		wantJSON(t, f.env.device(http.MethodDelete, "/channel_self?"+q.Encode(), nil),
			map[string]any{"error": ota.ChCannotOverride, "message": msgAdminPin})
		wantSuccess(t, f.env.device(http.MethodPost, "/updates", confRequest(nil)), f.internal)
	})
}
