package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/pkg/ota"
)

// deviceFrom sends a device request from the given client address.
func (e *testEnv) deviceFrom(addr, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = addr
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.serve(req)
}

func TestDeviceRateLimit(t *testing.T) {
	update := mustMarshal(t, confRequest(nil))
	stat := `{"action":"set","device_id":"` + confDevice + `","app_id":"` + testApp + `","version_name":"1.0.0"}`
	channel := mustMarshal(t, confRequest(map[string]any{"channel": "production"}))
	tests := []struct {
		name, method, path, body string
		// sibling shares the bucket of path.
		siblingMethod, siblingPath, siblingBody string
	}{
		{"updates", http.MethodPost, "/updates", update, http.MethodPost, "/check", update},
		{"stats", http.MethodPost, "/stats", stat, http.MethodPost, "/stats", stat},
		{"channel", http.MethodPost, "/channel_self", channel, http.MethodGet, "/channel_self?app_id=" + testApp + "&platform=ios", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, func(c *Config) { c.DeviceRateLimit = 1 }) // burst 5
			env.publish(testApp, "production", "1.0.0", zipOf(map[string]string{"index.html": "v1"}))
			const a, b = "203.0.113.7:4000", "198.51.100.9:4000"
			for i := range 5 {
				m, p, body := tt.method, tt.path, tt.body
				if i%2 == 1 {
					m, p, body = tt.siblingMethod, tt.siblingPath, tt.siblingBody
				}
				if rec := env.deviceFrom(a, m, p, body); rec.Code != http.StatusOK {
					t.Fatalf("request %d within the burst: status %d, body %s", i+1, rec.Code, rec.Body.String())
				}
			}
			rec := env.deviceFrom(a, tt.method, tt.path, tt.body)
			if rec.Code != http.StatusTooManyRequests {
				t.Fatalf("request past the burst: status %d, want 429; body %s", rec.Code, rec.Body.String())
			}
			if got := rec.Header().Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After = %q, want \"1\"", got)
			}
			if got, want := strings.TrimSpace(rec.Body.String()), `{"error":"too_many_requests","message":"Too many requests"}`; got != want {
				t.Errorf("body = %s, want %s", got, want)
			}
			// A port change is the same client; the bucket is per address.
			if rec := env.deviceFrom("203.0.113.7:4001", tt.method, tt.path, tt.body); rec.Code != http.StatusTooManyRequests {
				t.Errorf("same address, other port: status %d, want 429", rec.Code)
			}
			if rec := env.deviceFrom(b, tt.method, tt.path, tt.body); rec.Code != http.StatusOK {
				t.Errorf("another address: status %d, want 200; body %s", rec.Code, rec.Body.String())
			}
			// The other groups keep their own buckets.
			if tt.path != "/updates" {
				if rec := env.deviceFrom(a, http.MethodPost, "/updates", update); rec.Code != http.StatusOK {
					t.Errorf("/updates after %s ran dry: status %d, want 200", tt.path, rec.Code)
				}
			}
			// Admin routes are not device-limited.
			if rec := env.do(http.MethodGet, "/api/v1/apps", nil); rec.Code != http.StatusOK {
				t.Errorf("admin route: status %d, want 200", rec.Code)
			}
			env.clock.Advance(time.Second)
			if rec := env.deviceFrom(a, tt.method, tt.path, tt.body); rec.Code != http.StatusOK {
				t.Errorf("after Retry-After: status %d, want 200; body %s", rec.Code, rec.Body.String())
			}
		})
	}
}

func TestDeviceRateLimitKeying(t *testing.T) {
	update := mustMarshal(t, confRequest(nil))
	tests := []struct {
		name       string
		rate       float64
		trustProxy bool
		// forwarded is sent as X-Forwarded-For, a new value per request.
		forwarded bool
		wantLimit bool
	}{
		{"off", 0, false, false, false},
		{"peer address", 1, false, false, true},
		{"forwarded header ignored without trust-proxy", 1, false, true, true},
		{"forwarded header keyed with trust-proxy", 1, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, func(c *Config) { c.DeviceRateLimit = tt.rate; c.TrustProxy = tt.trustProxy })
			limited := false
			for i := range 20 {
				var h []string
				if tt.forwarded {
					h = []string{"X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i+1)}
				}
				rec := env.deviceFrom("10.0.0.1:5555", http.MethodPost, "/updates", update, h...)
				switch rec.Code {
				case http.StatusOK:
				case http.StatusTooManyRequests:
					limited = true
				default:
					t.Fatalf("status %d; body %s", rec.Code, rec.Body.String())
				}
			}
			if limited != tt.wantLimit {
				t.Errorf("limited = %v, want %v", limited, tt.wantLimit)
			}
		})
	}
}

// A refusal is an answer like any other: counted by route and status,
// and in the access log.
func TestDeviceRateLimitObserved(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.DeviceRateLimit = 0.2 }) // burst 1
	update := mustMarshal(t, confRequest(nil))
	env.deviceFrom("203.0.113.7:1", http.MethodPost, "/updates", update)
	rec := env.deviceFrom("203.0.113.7:1", http.MethodPost, "/updates", update)
	wantStatus(t, rec, http.StatusTooManyRequests, ota.ErrCodeTooManyRequests)
	if got := rec.Header().Get("Retry-After"); got != "5" {
		t.Errorf("Retry-After = %q, want \"5\" at 0.2 requests a second", got)
	}
	mrec := httptest.NewRecorder()
	env.srv.MetricsHandler().ServeHTTP(mrec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !metricLine(mrec.Body.String(), "otad_http_requests_total", `route="/updates"`, `status="429"`) {
		t.Errorf("no 429 of /updates in the metrics:\n%s", grepLines(mrec.Body.String(), "otad_http_requests_total"))
	}
	if !strings.Contains(env.logs.String(), "status=429") {
		t.Errorf("no access line with status 429 in the log:\n%s", env.logs.String())
	}
}

// metricLine reports whether one sample line of name has every label.
func metricLine(text, name string, labels ...string) bool {
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, name+"{") {
			continue
		}
		all := true
		for _, want := range labels {
			all = all && strings.Contains(l, want)
		}
		if all {
			return true
		}
	}
	return false
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// jsonEndpoints is every route that reads a JSON body, with a path that
// reaches the decoding (existing app and channel where the handler looks
// them up first).
var jsonEndpoints = []struct{ method, path string }{
	{http.MethodPost, "/updates"},
	{http.MethodPost, "/check"},
	{http.MethodPost, "/stats"},
	{http.MethodPost, "/channel_self"},
	{http.MethodPut, "/channel_self"},
	{http.MethodDelete, "/channel_self"},
	{http.MethodPost, "/api/auth/login"},
	{http.MethodPost, "/api/v1/auth/login"},
	{http.MethodPatch, "/api/v1/apps/" + testApp + "/channels/production"},
	{http.MethodPost, "/api/v1/apps/" + testApp + "/channels/production/rollback"},
	{http.MethodPost, "/api/v1/apps/" + testApp + "/channels/beta/promote"},
	{http.MethodPost, "/api/v1/apps/" + testApp + "/channels/production/rollout"},
	{http.MethodPost, "/api/v1/apps/" + testApp + "/explain"},
	{http.MethodPut, "/api/v1/apps/" + testApp + "/devices/" + confDevice + "/channel"},
	{http.MethodPost, "/api/v1/webhooks"},
	{http.MethodPost, "/api/v1/tokens"},
}

func TestJSONBodiesHostile(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MaxJSONBytes = 256 << 10 })
	env.publish(testApp, "production", "1.0.0", zipOf(map[string]string{"index.html": "v1"}))
	limit := int(env.cfg.MaxJSONBytes)
	// Nesting within the size limit but deeper than encoding/json's
	// 10,000 levels, inside a key every endpoint at least has to skip.
	// The login body limit (4 KiB) refuses it before parsing.
	const depth = 12_000
	nested := `{"metadata":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
	nestedObj := `{"a":` + strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth+1)
	oversized := `{"device_id":"` + strings.Repeat("a", limit) + `"}`
	bodies := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"oversized", oversized, http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge},
		{"nested arrays", nested, http.StatusBadRequest, ""},
		{"nested objects", nestedObj, http.StatusBadRequest, ""},
	}
	for _, ep := range jsonEndpoints {
		for _, b := range bodies {
			t.Run(ep.method+" "+ep.path+" "+b.name, func(t *testing.T) {
				start := time.Now()
				// Bodies of /stats are arrays or objects; nesting inside an
				// array element must fail alike.
				rec := env.do(ep.method, ep.path, b.body, "Content-Type", "application/json")
				if took := time.Since(start); took > 2*time.Second {
					t.Errorf("took %s", took)
				}
				if b.status == http.StatusBadRequest && strings.Contains(ep.path, "/login") && rec.Code == http.StatusRequestEntityTooLarge {
					rec.Code = http.StatusBadRequest // refused by size first
				}
				wantStatus(t, rec, b.status, b.code)
				var er ota.ErrorResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &er); err != nil || er.Code == "" || er.Message == "" {
					t.Errorf("body %q is not the error envelope", rec.Body.String())
				}
			})
		}
	}
}

func TestStatsEventLimit(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MaxJSONBytes = 1 << 20 })
	event := `{"action":"set","device_id":"` + confDevice + `","version_name":"1.0.0","metadata":{"k":"a,b],[{"}}`
	many := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat(event+",", n), ",") + "]" }
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"at the limit", many(maxStatsEvents), http.StatusOK},
		{"one over", many(maxStatsEvents + 1), http.StatusRequestEntityTooLarge},
		{"a megabyte of empty events", "[" + strings.Repeat("{},", (1<<20)/3-2) + "{}]", http.StatusRequestEntityTooLarge},
		{"commas inside one event do not count", "[" + `{"action":"set","device_id":"` + confDevice + `","metadata":{` +
			strings.TrimSuffix(strings.Repeat(`"k":"",`, 2000), ",") + `}}]`, http.StatusOK},
		{"one object", event, http.StatusOK},
		{"leading space", "  \n" + many(3), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			rec := env.device(http.MethodPost, "/stats", tt.body)
			runtime.ReadMemStats(&after)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %.300s", rec.Code, tt.status, rec.Body.String())
			}
			// Decoding 350,000 empty events cost about 500 MB; refusing
			// them while they stream in costs about the body.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("allocated %d MB for a %d-byte body", alloc>>20, len(tt.body))
			}
		})
	}
}

func TestEventCounter(t *testing.T) {
	tests := []struct {
		body string
		max  int
		ok   bool
	}{
		{`[]`, 1, true},
		{`[{}]`, 1, true},
		{`[{},{}]`, 1, false},
		{`[{},{}]`, 2, true},
		{`[{},{},{}]`, 2, false},
		{`[{"a":[1,2,3,4]},{"b":"x,y,z"}]`, 2, true},
		{`[{"a":"\",\",\","},{}]`, 2, true},
		{`[{"a":"\\"},{},{}]`, 2, false},
		{`{"a":1,"b":2,"c":3}`, 1, true},
		{` [1,2,3]`, 2, false},
		{`garbage,,,,`, 1, true},
		{`[{"a":"long string, with \\ and \" and, commas"},{"b":"\\\\"},{}]`, 2, false},
		{`[{"a":"long string, with \\ and \" and, commas"},{"b":"\\\\"},{}]`, 3, true},
		{`[{"a":"\\\",,,"},{}]`, 2, true},
	}
	for _, tt := range tests {
		// One byte at a time (state must carry across reads) and whole.
		for _, oneByte := range []bool{true, false} {
			ec := &eventCounter{body: io.NopCloser(strings.NewReader(tt.body)), max: tt.max}
			var r io.Reader = ec
			if oneByte {
				r = iotestOneByte{ec}
			}
			_, err := io.Copy(io.Discard, r)
			if ok := err == nil; ok != tt.ok {
				t.Errorf("%s with max %d (one byte a read: %v): err %v, want ok %v", tt.body, tt.max, oneByte, err, tt.ok)
			}
		}
	}
}

type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// TestUploadStalled sends part of an upload over a real connection and
// then nothing: the server must give up after the idle limit, answer, and
// drop the partial file. An upload that keeps trickling in must not be cut.
func TestUploadStalled(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.UploadIdleTimeout = 300 * time.Millisecond })
	hs := httptest.NewServer(env.srv.Handler())
	defer hs.Close()

	body, ct := multipartOf(t,
		formPart{Name: "version", Data: []byte("1.0.0")},
		formPart{Name: "channel", Data: []byte("production")},
		formPart{Name: "app_id", Data: []byte(testApp)},
		formPart{Name: "file", FileName: "bundle.zip", Data: zipOf(map[string]string{"index.html": strings.Repeat("x", 4096)})})
	head := fmt.Sprintf("POST /api/v1/apps/%s/bundles HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		testApp, env.token, ct, len(body))

	t.Run("stalled", func(t *testing.T) {
		conn, err := net.Dial("tcp", hs.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(body[:len(body)/2]); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer to a stalled upload: %v\n%s", err, env.logs.String())
		}
		resp.Body.Close()
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("answered after %s; the idle limit is 300ms", took)
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
		if !strings.Contains(env.logs.String(), "upload stalled") {
			t.Errorf("no \"upload stalled\" line in the log:\n%s", env.logs.String())
		}
		// The partial file is gone (the server answered after dropping it).
		var kept []string
		_ = env.blobs.List(context.Background(), func(i blob.Info) error { kept = append(kept, i.SHA256); return nil })
		if len(kept) != 0 {
			t.Errorf("bundle files left after a stalled upload: %v", kept)
		}
		if rec := env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/bundles", nil); rec.Code != http.StatusNotFound && strings.Contains(rec.Body.String(), `"1.0.0"`) {
			t.Errorf("the stalled upload was published: %s", rec.Body.String())
		}
	})

	t.Run("slow but flowing", func(t *testing.T) {
		conn, err := net.Dial("tcp", hs.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		// Eight pieces 100 ms apart: 800 ms in all, never 300 ms idle.
		step := (len(body) + 7) / 8
		for rest := body; len(rest) > 0; {
			n := min(step, len(rest))
			if _, err := conn.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
			time.Sleep(100 * time.Millisecond)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("status %d, want 201; body %s", resp.StatusCode, b)
		}
	})
}

// Admin answers carry no CORS headers, so a web page on another origin
// cannot read them with the user's browser, and they are private.
func TestAdminHeadersNoCORS(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name, method, path string
		headers            []string
		status             int
	}{
		{"authorized read", http.MethodGet, "/api/v1/apps", nil, http.StatusOK},
		{"no token", http.MethodGet, "/api/v1/apps", []string{"Authorization", ""}, http.StatusUnauthorized},
		{"preflight", http.MethodOptions, "/api/v1/apps", []string{"Access-Control-Request-Method", "GET", "Authorization", ""}, 0},
		{"login", http.MethodPost, "/api/v1/auth/login", nil, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := append([]string{"Origin", "https://evil.example"}, tt.headers...)
			rec := env.do(tt.method, tt.path, nil, h...)
			if tt.status != 0 && rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.status, rec.Body.String())
			}
			for name := range rec.Header() {
				if strings.HasPrefix(strings.ToLower(name), "access-control-") {
					t.Errorf("answer carries %s: %q", name, rec.Header().Get(name))
				}
			}
			if tt.method == http.MethodOptions {
				return // no route: nothing to mark
			}
			for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "X-Frame-Options": "DENY"} {
				if got := rec.Header().Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// checkDeviceAnswer is what the fuzz tests hold every answer to: never a
// server fault, always a JSON body.
func checkDeviceAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("status %d with a body that is not JSON: %q", rec.Code, rec.Body.String())
	}
}

func FuzzStatsBody(f *testing.F) {
	f.Add([]byte(`{"action":"set","device_id":"` + confDevice + `","app_id":"` + testApp + `","version_name":"1.0.0"}`))
	f.Add([]byte(`[{"action":"download_fail","version_name":"2.0.0","metadata":{"a":"b"}},{}]`))
	f.Add([]byte(`[]`))
	env := newTestEnv(f)
	env.publish(testApp, "production", "1.0.0", zipOf(map[string]string{"index.html": "v1"}))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := env.serve(httptest.NewRequest(http.MethodPost, "/stats", bytes.NewReader(bytes.Clone(body))))
		checkDeviceAnswer(t, rec)
		if rec.Code == http.StatusOK && !json.Valid(body) {
			t.Fatalf("invalid JSON %q stored", body)
		}
	})
}

func FuzzChannelSelf(f *testing.F) {
	f.Add(uint8(0), "", []byte(`{"channel":"beta","device_id":"`+confDevice+`","app_id":"`+testApp+`","version_name":"1.0.0","plugin_version":"8.0.0"}`))
	f.Add(uint8(1), "", []byte(`{"defaultChannel":"production","device_id":"`+confDevice+`","app_id":"`+testApp+`"}`))
	f.Add(uint8(2), "app_id="+testApp+"&platform=ios&is_emulator=false", []byte(nil))
	f.Add(uint8(3), "app_id="+testApp+"&device_id="+confDevice, []byte(`{}`))
	env := newTestEnv(f)
	env.publish(testApp, "production", "1.0.0", zipOf(map[string]string{"index.html": "v1"}))
	env.publish(testApp, "beta", "1.0.0", zipOf(map[string]string{"index.html": "v1"}))
	methods := []string{http.MethodPost, http.MethodPut, http.MethodGet, http.MethodDelete}
	f.Fuzz(func(t *testing.T, m uint8, query string, body []byte) {
		req := httptest.NewRequest(methods[int(m)%len(methods)], "/channel_self", bytes.NewReader(bytes.Clone(body)))
		req.URL.RawQuery = query
		checkDeviceAnswer(t, env.serve(req))
	})
}

// TestSlowJSONBody sends the headers of a JSON request and only part of
// its body: the server answers once the body deadline passes, also when
// it refuses the request without reading the body.
func TestSlowJSONBody(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.BodyReadTimeout = 300 * time.Millisecond; c.DeviceRateLimit = 0.1 }) // burst 1
	hs := httptest.NewServer(env.srv.Handler())
	defer hs.Close()
	body := mustMarshal(t, confRequest(nil))
	tests := []struct {
		name, path string
		want       int
	}{
		{"read by the handler", "/updates", http.StatusBadRequest},
		// The first request used the one-request burst of 127.0.0.1.
		{"refused by the rate limit first", "/updates", http.StatusTooManyRequests},
		{"admin route without a token", "/api/v1/apps/" + testApp + "/channels/production/rollback", http.StatusUnauthorized},
		{"login", "/api/v1/auth/login", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", hs.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				tt.path, len(body)+100, body[:10])
			start := time.Now()
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer while the body stalls: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("answered after %s; the body deadline is 300ms", took)
			}
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, tt.want, b)
			}
			if strings.Contains(string(b), "127.0.0.1") {
				t.Errorf("the answer names the server's address: %s", b)
			}
		})
	}
}

// refElements counts a top-level array's elements byte by byte, the plain
// way eventCounter's scan must agree with (-1 when the body is not an
// array).
func refElements(body string) int {
	body = strings.TrimLeft(body, " \t\r\n")
	if !strings.HasPrefix(body, "[") {
		return -1
	}
	depth, commas, inStr, esc := 0, 0, false, false
	for i := 0; i < len(body); i++ {
		ch := body[i]
		switch {
		case inStr && esc:
			esc = false
		case inStr && ch == '\\':
			esc = true
		case inStr && ch == '"':
			inStr = false
		case inStr:
		case ch == '"':
			inStr = true
		case ch == '[' || ch == '{':
			depth++
		case ch == ']' || ch == '}':
			depth--
		case ch == ',' && depth == 1:
			commas++
		}
	}
	return commas
}

func FuzzEventCounter(f *testing.F) {
	f.Add(`[{"a":"x,\"y\\"},{},{"b":[1,2]}]`, 2)
	f.Add(`[{"a":"\\\\\",,"}]`, 1)
	f.Fuzz(func(t *testing.T, body string, max int) {
		if max < 1 || max > 50 {
			return
		}
		want := true
		if n := refElements(body); n >= 0 && n >= max {
			want = false
		}
		for _, oneByte := range []bool{true, false} {
			ec := &eventCounter{body: io.NopCloser(strings.NewReader(body)), max: max}
			var r io.Reader = ec
			if oneByte {
				r = iotestOneByte{ec}
			}
			_, err := io.Copy(io.Discard, r)
			if ok := err == nil; ok != want {
				t.Fatalf("%q with max %d (one byte a read: %v): ok %v, reference says %v", body, max, oneByte, ok, want)
			}
		}
	})
}

// 300 addresses of one IPv6 /64 are one client: choosing a new address
// inside one's /64 is free.
func TestDeviceRateLimitIPv6(t *testing.T) {
	update := mustMarshal(t, confRequest(nil))
	for _, tt := range []struct {
		name      string
		prefix    int
		wantAllow int
	}{
		{"a /64 is one client", 0, 5},
		{"configured per address", 128, 300},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, func(c *Config) { c.DeviceRateLimit = 1; c.IPv6Prefix = tt.prefix }) // burst 5
			allowed := 0
			for i := range 300 {
				rec := env.deviceFrom(fmt.Sprintf("[2001:db8:42:7:%x:%x::1]:443", i/256, i%256+1), http.MethodPost, "/updates", update)
				if rec.Code == http.StatusOK {
					allowed++
				}
			}
			if allowed != tt.wantAllow {
				t.Errorf("%d of 300 update checks from one /64 answered, want %d", allowed, tt.wantAllow)
			}
			if rec := env.deviceFrom("[2001:db8:42:8::1]:443", http.MethodPost, "/updates", update); rec.Code != http.StatusOK {
				t.Errorf("another /64: status %d, want 200", rec.Code)
			}
		})
	}
}

// Webhooks cannot reach loopback, link-local or private addresses unless
// the operator allows them, and the test call's answer does not tell an
// open port from a closed one.
func TestWebhookTargetsHostile(t *testing.T) {
	env := newTestEnv(t)
	for _, url := range []string{
		"http://127.0.0.1:22/", "http://[::1]:6379/", "http://localhost:9200/x", "http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1/", "http://192.168.1.1/admin", "http://[fe80::1]/", "http://0.0.0.0:8080/",
	} {
		rec := env.do(http.MethodPost, "/api/v1/webhooks", ota.WebhookRequest{URL: url})
		wantStatus(t, rec, http.StatusBadRequest, ota.ErrCodeBadRequest)
		if !strings.Contains(rec.Body.String(), "--webhook-allow-private") {
			t.Errorf("refusal of %s does not say how to allow it: %s", url, rec.Body)
		}
	}

	allowed := newTestEnv(t, func(c *Config) { c.Webhooks.AllowPrivate = true })
	t.Cleanup(allowed.srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String() + "/"
	ln.Close()
	hook := decode[ota.WebhookCreated](t, allowed.do(http.MethodPost, "/api/v1/webhooks", ota.WebhookRequest{URL: closedURL}))
	rec := allowed.do(http.MethodPost, "/api/v1/webhooks/"+hook.ID+"/test", nil)
	wantStatus(t, rec, http.StatusOK, "")
	d := decode[ota.WebhookDelivery](t, rec)
	if d.OK || d.Error == "" {
		t.Fatalf("delivery to a closed port = %+v, want a failure", d)
	}
	for _, leak := range []string{"refused", "reset", "127.0.0.1", "dial", "timeout"} {
		if strings.Contains(strings.ToLower(d.Error), leak) {
			t.Errorf("the test call's answer %q says %q about the port", d.Error, leak)
		}
	}
}

// Upload errors name what went wrong, never the server's files.
func TestUploadErrorsHostile(t *testing.T) {
	env := newTestEnv(t)
	path := "/api/v1/apps/" + testApp + "/bundles"
	body, ct := multipartOf(t,
		formPart{Name: "version", Data: []byte("1.0.0")},
		formPart{Name: "file", FileName: "bundle.zip", Data: zipOf(map[string]string{"index.html": strings.Repeat("x", 64<<10)})})
	tests := []struct {
		name   string
		body   []byte
		fields []string
		want   string
	}{
		{"truncated upload", body[:len(body)/2], nil, "ended before the form was complete"},
		{"min_native above max_native", nil, []string{"version", "1.0.1", "min_native", "2.0.0", "max_native", "1.9"}, "above max_native"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec *httptest.ResponseRecorder
			if tt.body != nil {
				rec = env.do(http.MethodPost, path, tt.body, "Content-Type", ct)
			} else {
				rec = env.upload(path, zipOf(map[string]string{"index.html": "x"}), tt.fields...)
			}
			wantStatus(t, rec, http.StatusBadRequest, ota.ErrCodeBadRequest)
			msg := rec.Body.String()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("answer %s, want it to say %q", msg, tt.want)
			}
			for _, leak := range []string{env.dir, "/tmp", "put-", "blobs"} {
				if strings.Contains(msg, leak) {
					t.Errorf("answer %s names the server's %q", msg, leak)
				}
			}
		})
	}
	wantStatus(t, env.do(http.MethodGet, path, nil), http.StatusNotFound, ota.ErrCodeAppNotFound) // nothing was published
}

// An admin's device pin stands until an admin removes it: anonymous
// unsetChannel calls and a legacy plugin's setChannel are refused with
// cannot_override, record nothing, and the device keeps its channel.
// What a device may do to its own pin is recorded too.
func TestChannelSelfAdminPin(t *testing.T) {
	f := newConfFixture(t)
	env := f.env
	env.override(testApp, confDevice, "internal")
	before := len(decode[ota.HistoryPage](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/history?limit=500", nil)).Events)
	legacy := func(ch string) map[string]any {
		return confRequest(map[string]any{"channel": ch, "plugin_version": "6.20.0"})
	}
	refused := map[string]any{"error": ota.ChCannotOverride, "message": msgAdminPin}
	attacks := []struct {
		name, method, path string
		body               any
	}{
		{"DELETE by query", http.MethodDelete, "/channel_self?app_id=" + testApp + "&device_id=" + strings.ToUpper(confDevice), nil},
		{"DELETE by body", http.MethodDelete, "/channel_self", confRequest(nil)},
		{"legacy setChannel to the public channel", http.MethodPost, "/channel_self", legacy("production")},
		{"legacy setChannel to a self-settable channel", http.MethodPost, "/channel_self", legacy("beta")},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			wantJSON(t, env.device(a.method, a.path, a.body), refused)
			wantSuccess(t, env.device(http.MethodPost, "/updates", confRequest(nil)), f.internal)
		})
	}
	page := decode[ota.HistoryPage](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/history?limit=500", nil))
	if len(page.Events) != before {
		t.Errorf("refused device requests added %d history events", len(page.Events)-before)
	}
	// The admin removes it, and that is recorded.
	wantStatus(t, env.do(http.MethodDelete, "/api/v1/apps/"+testApp+"/devices/"+confDevice+"/channel", nil), http.StatusNoContent, "")
	page = decode[ota.HistoryPage](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/history?limit=1", nil))
	if ev := page.Events[0]; ev.Type != ota.EventOverride || ev.From != "internal" || ev.To != "" || ev.Actor != testUser {
		t.Errorf("newest event = %+v; want the admin's unpinning", ev)
	}
	// A device's own pin: set and removed by the device, both recorded.
	wantJSON(t, env.device(http.MethodPost, "/channel_self", legacy("beta")), map[string]any{"status": "ok"})
	wantJSON(t, env.device(http.MethodDelete, "/channel_self", confRequest(nil)), map[string]any{"status": "ok"})
	page = decode[ota.HistoryPage](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/history?limit=2", nil))
	for i, want := range []struct{ from, to string }{{"beta", ""}, {"", "beta"}} {
		if ev := page.Events[i]; ev.Type != ota.EventOverride || ev.From != want.from || ev.To != want.to || ev.Actor != "device:"+confDevice {
			t.Errorf("event %d = %+v; want the device's own change %s → %s", i, ev, want.from, want.to)
		}
	}
}

// Made-up successes do not stop the automatic halt: a report counts
// toward a version's health only when otad offered that version to that
// device id. One request of 1,000 made-up "set" events for the version
// rolling out, then 60 real devices that were offered it and fail: the
// release halts. The made-up reports are kept, marked unverified, and
// left out of the stats summary.
func TestForgedReportsDoNotHoldOffAHalt(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MaxJSONBytes = 1 << 20 })
	ts := httptest.NewServer(env.srv.Handler())
	defer ts.Close()
	env.publish(testApp, "production", "1.0.0", nil)
	env.publish(testApp, "production", "1.1.0", nil)
	env.patch(testApp, "production", ota.ChannelPolicyPatch{AutoHalt: ptrTo(true), HaltOnFailureRate: ptrTo(0.2), MinDevices: ptrTo(50)})

	forged := make([]ota.StatsEvent, 1000)
	for i := range forged {
		forged[i] = ota.StatsEvent{DeviceInfo: ota.DeviceInfo{AppID: testApp, DeviceID: fmt.Sprintf("fake-%04d", i), Platform: "android",
			VersionName: "1.1.0", VersionBuild: "1.0.0", PluginVersion: "8.51.14"}, Action: "set"}
	}
	wantStatus(t, env.device(http.MethodPost, "/stats", forged), http.StatusOK, "")
	if devices, _, _ := env.srv.health.counts(testApp, "1.1.0"); devices != 0 {
		t.Fatalf("1,000 made-up reports count as %d devices", devices)
	}

	client := ts.Client()
	for _, d := range fleet(60, "1.0.0", 10) { // every one fails 1.1.0
		d.poll(t, client, ts.URL)
	}
	ch := decode[ota.Channel](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/channels/production", nil))
	if ch.Active != "1.0.0" || ch.Rollout == nil || !ch.Rollout.Halted {
		t.Fatalf("after 60 real failures the channel serves %s (rollout %+v); want 1.1.0 halted", ch.Active, ch.Rollout)
	}

	stats := decode[[]store.StoredStat](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/stats?limit=1000", nil))
	unverified := 0
	for _, st := range stats {
		if strings.HasPrefix(st.Event.DeviceID, "fake-") != st.Unverified {
			t.Fatalf("stored %+v: unverified %v", st.Event.DeviceInfo, st.Unverified)
		}
		if st.Unverified {
			unverified++
		}
	}
	if unverified == 0 {
		t.Fatal("no made-up report is stored")
	}
	sum := decode[ota.StatsSummary](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/health", nil))
	for _, v := range sum.Versions {
		// The halt came at the 50th failure (min_devices); later devices
		// were not offered 1.1.0.
		if v.Version == "1.1.0" && (v.Installed > 60 || v.Failed < 50 || v.Failed > 60) {
			t.Errorf("summary of 1.1.0 = %+v; want the real devices only, not 1,000 more", v)
		}
	}
}

// What otad offered each device survives a restart: reports that come
// after it still count.
func TestOffersSurviveRestart(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "production", "1.0.1", nil)
	wantSuccessVersion := func(rec *httptest.ResponseRecorder) {
		t.Helper()
		if !strings.Contains(rec.Body.String(), `"version":"1.0.1"`) {
			t.Fatalf("update check: %s", rec.Body)
		}
	}
	wantSuccessVersion(env.device(http.MethodPost, "/updates", confRequest(nil)))
	env.srv.Close() // saves what is not saved yet, as a stopping otad does
	env.reopen()
	if o, ok := env.srv.offers.Lookup(testApp, confDevice); !ok || o.Version != "1.0.1" || o.Channel != "production" || o.Count != 1 {
		t.Fatalf("offer after a restart = %+v, %v", o, ok)
	}
	ev := confRequest(map[string]any{"action": "update_fail", "version_name": "1.0.1"})
	wantStatus(t, env.device(http.MethodPost, "/stats", []any{ev}), http.StatusOK, "")
	if _, failed, _ := env.srv.health.counts(testApp, "1.0.1"); failed != 1 {
		t.Errorf("a failure of a version offered before the restart counts %d times, want 1", failed)
	}
}

// Every device route applies the same device id rules: what the plugin
// sends (a UUID), not whatever a client makes up.
func TestDeviceIDHostile(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MaxJSONBytes = 1 << 20 })
	env.publish(testApp, "production", "1.0.0", nil)
	ids := map[string]string{
		"65 bytes":      strings.Repeat("a", maxDeviceLen+1),
		"half a MB":     strings.Repeat("d", 512<<10),
		"path":          "../../etc/passwd",
		"space":         "a b",
		"markup":        "<script>x</script>",
		"leading dash":  "-abc",
		"unicode":       "gerät-1",
		"control bytes": "a\u0001b",
	}
	for name, id := range ids {
		body := func(extra map[string]any) string {
			m := confRequest(extra)
			m["device_id"] = id
			return mustMarshal(t, m)
		}
		for _, r := range []struct{ method, path, body string }{
			{http.MethodPost, "/updates", body(nil)},
			{http.MethodPost, "/check", body(nil)},
			{http.MethodPost, "/stats", body(map[string]any{"action": "set"})},
			{http.MethodPost, "/stats", "[" + body(map[string]any{"action": "set"}) + "]"},
			{http.MethodPost, "/channel_self", body(map[string]any{"channel": "production"})},
			{http.MethodPut, "/channel_self", body(nil)},
			{http.MethodDelete, "/channel_self", body(nil)},
			{http.MethodGet, "/channel_self?app_id=" + testApp + "&platform=ios&device_id=" + url.QueryEscape(id), ""},
		} {
			t.Run(name+" "+r.method+" "+r.path, func(t *testing.T) {
				if r.method == http.MethodGet && len(id) > 4096 {
					t.Skip("too long for a URL")
				}
				rec := env.deviceFrom("192.0.2.1:1", r.method, r.path, r.body, "Content-Type", "application/json")
				wantStatus(t, rec, http.StatusBadRequest, ota.ErrCodeInvalidName)
			})
		}
	}
	// Nothing of them was kept.
	if stats := decode[[]store.StoredStat](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/stats", nil)); len(stats) != 0 {
		t.Errorf("%d events of invalid devices stored", len(stats))
	}
}

// Sixty 1 MB "set" events grew otad by hundreds of MB of memory and disk
// through long device ids: now they are refused, and the memory of
// device health is bounded in bytes whatever the ids.
func TestLongDeviceIDsGrowNothing(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MaxJSONBytes = 1 << 20 })
	env.publish(testApp, "production", "1.0.0", nil)
	db := filepath.Join(env.dir, "ota.db")
	before, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		ev := confRequest(map[string]any{"action": "set", "version_name": "1.0.0",
			"device_id": fmt.Sprintf("%d%s", i, strings.Repeat("f", 1<<20-300))})
		wantStatus(t, env.device(http.MethodPost, "/stats", []any{ev}), http.StatusBadRequest, ota.ErrCodeInvalidName)
	}
	if err := env.srv.FlushHealth(t.Context()); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if grew := after.Size() - before.Size(); grew > 1<<20 {
		t.Errorf("the database grew by %d bytes", grew)
	}
	if b := env.srv.health.bytes; b != 0 {
		t.Errorf("device health holds %d bytes", b)
	}

	// The byte bound of the health memory, with valid ids.
	h := newHealthTracker(0, 64<<10)
	snap := env.srv.Snapshot()
	var evs []ota.StatsEvent
	for i := range 5000 {
		evs = append(evs, ota.StatsEvent{DeviceInfo: ota.DeviceInfo{AppID: testApp, DeviceID: fmt.Sprintf("%064d", i), VersionName: "1.0.0"}, Action: "set"})
	}
	h.record(snap, evs, nil, testEpoch)
	if h.bytes > 64<<10 || h.bytes < 60<<10 {
		t.Errorf("health holds %d bytes for a bound of %d", h.bytes, 64<<10)
	}
	if devices, _, _ := h.counts(testApp, "1.0.0"); devices >= 5000 || devices == 0 {
		t.Errorf("%d of 5000 devices remembered within 64 KiB", devices)
	}
}

// Every stored field is cut to what the plugin sends, and a stored event
// is at most maxStoredEvent bytes, however it was escaped.
func TestStatsFieldCaps(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MaxJSONBytes = 1 << 20 })
	env.publish(testApp, "production", "1.0.0", nil)
	huge := strings.Repeat("x", 50<<10)
	meta := map[string]any{}
	for i := range 40 {
		meta[fmt.Sprintf("k%02d%s", i, strings.Repeat("k", 70*(i%2)))] = strings.Repeat("v", 3000)
	}
	escaped := map[string]any{}
	for i := range 20 {
		escaped[fmt.Sprint("e", i)] = strings.Repeat("<\u0001>", 600) // six bytes each in JSON
	}
	fields := map[string]any{"action": "set" + huge, "platform": "ios" + huge, "custom_id": huge, "version_build": "1.0.0" + huge,
		"version_code": huge, "version_os": huge, "version_name": "1.0.0:" + huge, "plugin_version": huge,
		"install_source": huge, "defaultChannel": huge, "key_id": huge, "channel": huge, "old_version_name": huge}
	events := []any{confRequest(fields), confRequest(map[string]any{"action": "set", "metadata": meta}),
		confRequest(map[string]any{"action": "set", "metadata": escaped, "custom_id": strings.Repeat("\u0002", capCustomID)})}
	wantStatus(t, env.device(http.MethodPost, "/stats", events), http.StatusOK, "")
	stats := decode[[]store.StoredStat](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/stats", nil))
	if len(stats) != len(events) {
		t.Fatalf("%d events stored, want %d", len(stats), len(events))
	}
	for i, st := range stats {
		ev := &st.Event
		for name, f := range map[string]struct {
			v   string
			cap int
		}{
			"platform": {ev.Platform, capPlatform}, "custom_id": {ev.CustomID, capCustomID}, "version_build": {ev.VersionBuild, capVersion},
			"version_code": {ev.VersionCode, capVersionCode}, "version_os": {ev.VersionOS, capVersionOS},
			"version_name": {ev.VersionName, capVersionName}, "plugin_version": {ev.PluginVersion, capPluginVersion},
			"install_source": {ev.InstallSource, capInstallSource}, "defaultChannel": {ev.DefaultChannel, ota.MaxChannelLen},
			"key_id": {ev.KeyID, capKeyID}, "channel": {ev.Channel, ota.MaxChannelLen}, "action": {ev.Action, capAction},
			"old_version_name": {ev.OldVersionName, capVersion},
		} {
			if len(f.v) > f.cap {
				t.Errorf("event %d: %s is %d bytes, cap %d", i, name, len(f.v), f.cap)
			}
		}
		total := 0
		for k, v := range ev.Metadata {
			total += len(k) + len(v)
			if len(k) > maxStatsMetaKeyLen || len(v) > maxStatsMetaValueLn {
				t.Errorf("event %d: metadata %q is %d bytes", i, k, len(v))
			}
		}
		if len(ev.Metadata) > maxStatsMetaKeys || total > maxStatsMetaBytes {
			t.Errorf("event %d: %d metadata keys of %d bytes", i, len(ev.Metadata), total)
		}
		raw, _ := json.Marshal(ev)
		if len(raw) > maxStoredEvent {
			t.Errorf("event %d is %d bytes as stored, more than %d", i, len(raw), maxStoredEvent)
		}
	}
	if stats[1].Event.Metadata == nil {
		t.Error("metadata within its bounds after cutting was dropped")
	}
}

// The stats store is bounded in bytes per app, and a full stats store or
// a nearly full disk never blocks an upload or a rollback: device stats
// are refused first (they still count toward device health).
func TestStatsStoreBoundedInBytes(t *testing.T) {
	t.Run("bytes per app", func(t *testing.T) {
		const limit = 256 << 10
		env := newTestEnvWithStore(t, bolt.Options{StatsMaxBytesPerApp: limit}, func(c *Config) { c.MaxJSONBytes = 1 << 20 })
		env.publish(testApp, "production", "1.0.0", nil)
		meta := map[string]any{}
		for i := range 2 {
			meta[fmt.Sprint("stack", i)] = strings.Repeat("s", maxStatsMetaValueLn)
		}
		for range 20 { // twenty anonymous requests of fat events
			batch := make([]any, 100)
			for j := range batch {
				batch[j] = confRequest(map[string]any{"action": "webview_javascript_error", "metadata": meta, "custom_id": strings.Repeat("c", 5000)})
			}
			wantStatus(t, env.device(http.MethodPost, "/stats", batch), http.StatusOK, "")
		}
		stats := decode[[]store.StoredStat](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/stats?limit=1000", nil))
		total := 0
		for _, st := range stats {
			raw, _ := json.Marshal(st)
			total += len(raw)
		}
		if total > limit || len(stats) == 0 {
			t.Errorf("%d events of %d bytes kept; the bound is %d", len(stats), total, limit)
		}
		wantStatus(t, env.upload("/api/v1/apps/"+testApp+"/bundles", bundleZip("1.0.1"), "version", "1.0.1", "channel", "production"), http.StatusCreated, "")
	})
	t.Run("disk nearly full", func(t *testing.T) {
		env := newTestEnvWithStore(t, bolt.Options{StatsReserveBytes: 1 << 62}) // never enough room
		env.publish(testApp, "production", "1.0.0", nil)
		env.publish(testApp, "production", "1.0.1", nil)
		env.offered(testApp, "production", "1.0.1", confDevice)
		ev := confRequest(map[string]any{"action": "update_fail", "version_name": "1.0.1"})
		wantStatus(t, env.device(http.MethodPost, "/stats", []any{ev}), http.StatusOK, "")
		if stats := decode[[]store.StoredStat](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/stats", nil)); len(stats) != 0 {
			t.Errorf("%d events stored with the disk nearly full", len(stats))
		}
		if _, failed, _ := env.srv.health.counts(testApp, "1.0.1"); failed != 1 {
			t.Errorf("the refused batch counts %d failures, want 1", failed)
		}
		if !strings.Contains(env.logs.String(), "device stats not stored") {
			t.Error("no log line says stats are not stored")
		}
		wantStatus(t, env.upload("/api/v1/apps/"+testApp+"/bundles", bundleZip("1.0.2"), "version", "1.0.2", "channel", "production"), http.StatusCreated, "")
		wantStatus(t, env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/production/rollback", nil), http.StatusOK, "")
	})
}
