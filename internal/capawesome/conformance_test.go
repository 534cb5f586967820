package capawesome_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/server"
	"github.com/otaship/ota/pkg/ota"
)

// The conformance cases of docs/protocol-capawesome.md §9, C1-C13: exact
// query strings of both platforms over HTTPS through the real router,
// answers checked key by key, since the plugin reacts to a key's mere
// presence (an empty checksum fails verification).

// confEnv is §9's fixture: production (public default) 1.0.1 then 1.0.2,
// beta (self-settable) 1.1.0, internal (private) 2.0.0.
type confEnv struct {
	*env
	prod ota.Bundle
}

func newConfEnv(t testing.TB, opts ...func(*server.Config)) *confEnv {
	t.Helper()
	e := newEnv(t, opts...)
	e.deploy("production", "1.0.1", deployOpts{})
	prod := e.deploy("production", "1.0.2", deployOpts{})
	e.deploy("beta", "1.1.0", deployOpts{})
	e.deploy("internal", "2.0.0", deployOpts{})
	if _, err := e.admin.PatchChannel(t.Context(), testApp, "beta", ota.ChannelPolicyPatch{AllowSelfSet: ptrTo(true)}); err != nil {
		t.Fatal(err)
	}
	return &confEnv{env: e, prod: prod}
}

// androidQuery is the query as Android writes it, unset values as bare keys,
// with values changed (a "" value makes the key bare).
func androidQuery(changes map[string]string) string {
	vals := map[string]string{
		"appVersionCode": "1", "appVersionName": "1.0.0", "bundleId": "", "channelName": "", "customId": "",
		"deviceId": deviceID, "osVersion": "34", "platform": "0", "pluginVersion": "8.4.1",
	}
	for k, v := range changes {
		vals[k] = v
	}
	var parts []string
	for _, k := range []string{"appVersionCode", "appVersionName", "bundleId", "channelName", "customId", "deviceId", "osVersion", "platform", "pluginVersion"} {
		if vals[k] == "" {
			parts = append(parts, k)
		} else {
			parts = append(parts, k+"="+vals[k])
		}
	}
	return strings.Join(parts, "&")
}

// iosQuery is the query as iOS writes it: unset keys left out, in the
// given order (a dictionary's, so none in particular).
func iosQuery(changes map[string]string, order ...string) string {
	vals := map[string]string{
		"appVersionCode": "1", "appVersionName": "1.0.0", "deviceId": deviceID,
		"osVersion": "17.5", "platform": "1", "pluginVersion": "8.4.1",
	}
	for k, v := range changes {
		vals[k] = v
	}
	if len(order) == 0 {
		order = []string{"pluginVersion", "deviceId", "platform", "osVersion", "appVersionName", "appVersionCode", "bundleId", "channelName", "customId"}
	}
	var parts []string
	for _, k := range order {
		if v, ok := vals[k]; ok && v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, "&")
}

func (c *confEnv) latest(query string, header ...string) (int, http.Header, []byte) {
	c.t.Helper()
	return c.get("/v1/apps/"+testApp+"/bundles/latest?"+query, header...)
}

var lowerHex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// wantOffer checks a 200 offer of version from channel, key by key.
func (c *confEnv) wantOffer(t *testing.T, status int, body []byte, version, channel string, signed bool) map[string]any {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", status, body)
	}
	m := jsonObject(t, body)
	keys := []string{"artifactType", "bundleId", "channelName", "checksum", "url"}
	if signed {
		keys = append(keys, "signature")
	}
	var got []string
	for k, v := range m {
		got = append(got, k)
		if s, ok := v.(string); !ok || s == "" {
			t.Errorf("%s = %#v, want a non-empty string", k, v)
		}
	}
	slices.Sort(got)
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Errorf("answer keys %v, want exactly %v", got, keys)
	}
	if m["artifactType"] != ota.ArtifactZip || m["bundleId"] != version || m["channelName"] != channel {
		t.Errorf("answer %v, want zip %s from %s", m, version, channel)
	}
	if sum, _ := m["checksum"].(string); !lowerHex64.MatchString(sum) {
		t.Errorf("checksum %q is not 64 lowercase hex digits", sum)
	}
	if u, err := url.Parse(fmt.Sprint(m["url"])); err != nil || u.Scheme != "https" || !u.IsAbs() {
		t.Errorf("url %v is not an absolute https URL", m["url"])
	}
	return m
}

// wantNoUpdate checks a non-2xx refusal with the given code and a kind.
func wantNoUpdate(t *testing.T, status int, body []byte, code string) {
	t.Helper()
	if status < 300 && status >= 200 {
		t.Fatalf("status %d is a 2xx, which the plugin installs; body %s", status, body)
	}
	if status != http.StatusNotFound {
		t.Errorf("status %d, want 404", status)
	}
	m := jsonObject(t, body)
	if m["error"] != code || m["kind"] == nil || m["message"] == "" {
		t.Errorf("refusal %v, want error %q with kind and message", m, code)
	}
	if _, ok := m["bundleId"]; ok {
		t.Errorf("refusal carries bundleId: %v", m)
	}
}

func TestC1BothQueryForms(t *testing.T) {
	c := newConfEnv(t)
	for name, q := range map[string]string{
		"android": androidQuery(nil),
		"ios":     iosQuery(nil),
		"ios other order": iosQuery(nil, "appVersionCode", "platform", "deviceId", "appVersionName",
			"pluginVersion", "osVersion"),
	} {
		t.Run(name, func(t *testing.T) {
			status, _, body := c.latest(q)
			m := c.wantOffer(t, status, body, "1.0.2", "production", false)
			// The checksum is that of what the url serves.
			resp, err := c.https.Get(m["url"].(string))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			if resp.StatusCode != http.StatusOK || sha(buf.Bytes()) != m["checksum"] || m["checksum"] != c.prod.SHA256 {
				t.Errorf("download %d with sha256 %s; answer says %v", resp.StatusCode, sha(buf.Bytes()), m["checksum"])
			}
		})
	}
}

func TestC2UpToDate(t *testing.T) {
	c := newConfEnv(t)
	for _, q := range []string{androidQuery(map[string]string{"bundleId": "1.0.2"}), iosQuery(map[string]string{"bundleId": "1.0.2"})} {
		status, _, body := c.latest(q)
		wantNoUpdate(t, status, body, ota.UpdNoNewVersion)
		if m := jsonObject(t, body); m["kind"] != ota.KindUpToDate {
			t.Errorf("kind = %v, want up_to_date", m["kind"])
		}
	}
	// An older bundle the device runs is offered the channel's (a
	// rollback is served by its id, newer or older).
	status, _, body := c.latest(iosQuery(map[string]string{"bundleId": "1.0.1"}))
	c.wantOffer(t, status, body, "1.0.2", "production", false)
}

func TestC3PlusIsNotASpace(t *testing.T) {
	c := newConfEnv(t)
	c.deploy("production", "1.0.3+build.5", deployOpts{})
	for name, q := range map[string]string{
		"ios literal +":   iosQuery(map[string]string{"bundleId": "1.0.3+build.5"}),
		"android %2B":     androidQuery(map[string]string{"bundleId": "1.0.3%2Bbuild.5"}),
		"lowercase %2b":   androidQuery(map[string]string{"bundleId": "1.0.3%2bbuild.5"}),
		"escaped letters": iosQuery(map[string]string{"bundleId": "%31.0.3+build.5"}),
	} {
		status, _, body := c.latest(q)
		if status != http.StatusNotFound || jsonObject(t, body)["error"] != ota.UpdNoNewVersion {
			t.Errorf("%s: %d %s; want 404 up to date", name, status, body)
		}
	}
	// A space is a space: that device runs another bundle.
	status, _, body := c.latest(androidQuery(map[string]string{"bundleId": "1.0.3%20build.5"}))
	c.wantOffer(t, status, body, "1.0.3+build.5", "production", false)
}

func TestC4DeviceIDHeader(t *testing.T) {
	c := newConfEnv(t)
	if err := c.admin.SetOverride(t.Context(), testApp, deviceID, "internal"); err != nil {
		t.Fatal(err)
	}
	q := iosQuery(map[string]string{"deviceId": ""})
	status, _, body := c.latest(q, "X-Capawesome-Device-Id", strings.ToUpper(deviceID))
	c.wantOffer(t, status, body, "2.0.0", "internal", false)
	// Without either the check has no device, as /updates would say.
	status, _, body = c.latest(q)
	wantNoUpdate(t, status, body, ota.UpdMissingInfo)
}

func TestC5RefusalsAreNot2xx(t *testing.T) {
	c := newConfEnv(t)
	ctx := t.Context()
	// A bundle encrypted for the other plugin, on a self-settable channel.
	plain := zipOf(webFiles("3.0.0"))
	var ct bytes.Buffer
	enc, err := bundle.Encrypt(bytes.NewReader(plain), &ct, signKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.admin.Upload(ctx, ota.UploadRequest{
		AppID: testApp, Channel: "secure", Version: "3.0.0", File: bytes.NewReader(ct.Bytes()), Size: int64(ct.Len()),
		Encryption: &ota.BundleEncryption{SessionKey: enc.SessionKey, EncryptedChecksum: enc.Checksum, KeyID: enc.KeyID},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.admin.PatchChannel(ctx, testApp, "secure", ota.ChannelPolicyPatch{AllowSelfSet: ptrTo(true)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, query, code string
	}{
		{"unknown app", "/v1/apps/com.example.other/bundles/latest", iosQuery(nil), ota.UpdUnknownApp},
		{"private channel", "", iosQuery(map[string]string{"channelName": "internal"}), ota.UpdNoChannel},
		{"unknown channel", "", androidQuery(map[string]string{"channelName": "nope"}), ota.UpdNoChannel},
		{"encrypted bundle", "", iosQuery(map[string]string{"channelName": "secure"}), ota.UpdEncryptionUnsupported},
		{"no native version", "", androidQuery(map[string]string{"appVersionName": ""}), ota.UpdMissingInfo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = "/v1/apps/" + testApp + "/bundles/latest"
			}
			status, _, body := c.get(path + "?" + tt.query)
			wantNoUpdate(t, status, body, tt.code)
		})
	}
	t.Run("builtin target", func(t *testing.T) {
		if _, err := c.admin.Rollback(ctx, testApp, "production", ota.VersionBuiltin); err != nil {
			t.Fatal(err)
		}
		status, _, body := c.latest(iosQuery(map[string]string{"bundleId": "1.0.2"}))
		wantNoUpdate(t, status, body, ota.UpdBuiltinUnsupported)
		// On the built-in bundle already: up to date.
		status, _, body = c.latest(iosQuery(nil))
		wantNoUpdate(t, status, body, ota.UpdNoNewVersion)
	})
}

func TestC6MalformedQueries(t *testing.T) {
	c := newConfEnv(t)
	for name, q := range map[string]string{
		"platform 2":        androidQuery(map[string]string{"platform": "2"}),
		"no platform":       iosQuery(map[string]string{"platform": ""}),
		"device id path":    iosQuery(map[string]string{"deviceId": "..%2Fx"}),
		"bad escape":        iosQuery(map[string]string{"bundleId": "%zz"}),
		"twice":             androidQuery(nil) + "&platform=1",
		"long value":        iosQuery(map[string]string{"customId": strings.Repeat("a", 600)}),
		"not UTF-8":         iosQuery(map[string]string{"customId": "%ff%fe"}),
		"truncated escape":  iosQuery(map[string]string{"bundleId": "1.0%2"}),
		"long device id":    iosQuery(map[string]string{"deviceId": strings.Repeat("a", 129)}),
		"platform is iOS?":  iosQuery(map[string]string{"platform": "ios"}),
		"app id with space": "",
	} {
		t.Run(name, func(t *testing.T) {
			path := "/v1/apps/" + testApp + "/bundles/latest?" + q
			if name == "app id with space" {
				path = "/v1/apps/com%20example/bundles/latest?" + iosQuery(nil)
			}
			status, _, body := c.get(path)
			if status != http.StatusBadRequest || jsonObject(t, body)["error"] != ota.ErrCodeBadRequest {
				t.Errorf("%d %s; want 400 bad_request", status, body)
			}
		})
	}
	status, _, _ := c.latest(strings.Repeat("x=1&", 3000))
	if status != http.StatusBadRequest {
		t.Errorf("a 12 KB query: %d, want 400", status)
	}
}

func TestC7Signature(t *testing.T) {
	c := newConfEnv(t)
	b := c.deploy("production", "1.0.3", deployOpts{sign: signKey(t)})
	status, _, body := c.latest(androidQuery(nil))
	m := c.wantOffer(t, status, body, "1.0.3", "production", true)
	if m["signature"] != b.Signature {
		t.Errorf("signature %v, want the uploaded %q", m["signature"], b.Signature)
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(b.Signature); err != nil || strings.ContainsAny(b.Signature, "\n\r") {
		t.Errorf("signature %q is not one line of standard base64", b.Signature)
	}
	resp, err := c.https.Get(m["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := bundle.Verify(resp.Body, &signKey(t).PublicKey, b.Signature); err != nil {
		t.Errorf("the signature does not verify over the downloaded bytes: %v", err)
	}
}

func TestC8Download(t *testing.T) {
	c := newConfEnv(t)
	status, _, body := c.latest(iosQuery(nil))
	m := c.wantOffer(t, status, body, "1.0.2", "production", false)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, m["url"].(string), nil)
	req.Header.Set("Range", "bytes=10-")
	req.Header.Set("X-Capawesome-Device-Id", deviceID)
	resp, err := c.https.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		t.Errorf("ranged download: %d, want 206", resp.StatusCode)
	}
}

func TestC9DeviceOverride(t *testing.T) {
	c := newConfEnv(t)
	if err := c.admin.SetOverride(t.Context(), testApp, deviceID, "internal"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{androidQuery(nil), iosQuery(map[string]string{"channelName": "beta"})} {
		status, _, body := c.latest(q)
		c.wantOffer(t, status, body, "2.0.0", "internal", false)
	}
}

func TestC10Channels(t *testing.T) {
	c := newConfEnv(t)
	list := func(query string) (int, []map[string]any) {
		t.Helper()
		status, _, body := c.get("/v1/apps/"+testApp+"/channels"+query, "X-Capawesome-Device-Id", deviceID)
		if status != http.StatusOK {
			return status, nil
		}
		var out []map[string]any
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s: body %s is not a JSON array: %v", query, body, err)
		}
		return status, out
	}
	names := func(items []map[string]any) []string {
		var n []string
		for _, it := range items {
			n = append(n, fmt.Sprint(it["name"]))
			id, ok := it["id"].(string)
			if !ok || !regexp.MustCompile(`^[0-9]+$`).MatchString(id) {
				t.Errorf("channel %v: id is not a string of digits", it)
			}
			if len(it) != 2 {
				t.Errorf("channel %v has keys besides id and name", it)
			}
		}
		return n
	}
	for query, want := range map[string][]string{
		"":                  {"production", "beta"},
		"?query=BET":        {"beta"},
		"?query=zzz":        nil,
		"?limit=1":          {"production"},
		"?limit=1&offset=1": {"beta"},
		"?offset=5":         nil,
	} {
		status, items := list(query)
		if status != http.StatusOK || !slices.Equal(names(items), want) {
			t.Errorf("%q: %d %v, want %v", query, status, names(items), want)
		}
		if status == http.StatusOK && items == nil {
			t.Errorf("%q: null instead of an empty array", query)
		}
	}
	for _, query := range []string{"?limit=0", "?limit=-1", "?limit=x", "?offset=-1", "?limit=1001", "?query=%zz"} {
		if status, _ := list(query); status != http.StatusBadRequest {
			t.Errorf("%q: %d, want 400", query, status)
		}
	}
	status, _, body := c.get("/v1/apps/com.example.other/channels")
	if status != http.StatusNotFound || jsonObject(t, body)["error"] != ota.ErrCodeAppNotFound {
		t.Errorf("unknown app: %d %s, want 404 app_not_found", status, body)
	}
}

func TestC11NoStore(t *testing.T) {
	c := newConfEnv(t)
	for _, q := range []string{iosQuery(nil), iosQuery(map[string]string{"bundleId": "1.0.2"})} {
		if _, h, _ := c.latest(q); h.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", h.Get("Cache-Control"))
		}
	}
}

func TestC12SharedRateLimit(t *testing.T) {
	c := newConfEnv(t, func(cfg *server.Config) { cfg.DeviceRateLimit = 1 })
	limited := false
	for range 20 {
		status, h, body := c.latest(iosQuery(nil))
		if status == http.StatusTooManyRequests {
			limited = true
			if h.Get("Retry-After") == "" || jsonObject(t, body)["error"] != ota.ErrCodeTooManyRequests {
				t.Errorf("429 without Retry-After or too_many_requests: %v %s", h, body)
			}
			break
		}
	}
	if !limited {
		t.Fatal("20 checks at once were never limited at 1 per second")
	}
	// The other plugin's checks share the bucket.
	if code := postJSON(t, c.env, "/updates", map[string]any{"platform": "ios", "device_id": deviceID, "app_id": testApp,
		"version_build": "1.0.0", "version_name": "1.0.0"}); code != http.StatusTooManyRequests {
		t.Errorf("POST /updates after the limit: %d, want 429", code)
	}
}
