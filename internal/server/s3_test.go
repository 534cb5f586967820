package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/blob/blobtest"
	s3blob "github.com/otaship/ota/internal/blob/s3"
	downloads "github.com/otaship/ota/internal/download"
	"github.com/otaship/ota/internal/testengine"
	"github.com/otaship/ota/pkg/ota"
)

// s3Prefix is the folder of the test bucket the server's bundles go in.
const s3Prefix = "otad/blobs"

// counter counts what a handler writes, per route kind.
type counter struct {
	downloadBytes atomic.Int64 // bodies of /api/ota/bundle/… and /api/ota/file/…
	downloads     atomic.Int64
	otherBytes    atomic.Int64 // everything else (/updates answers, admin)
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (c *counter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := &c.otherBytes
		if strings.HasPrefix(r.URL.Path, "/api/ota/bundle/") || strings.HasPrefix(r.URL.Path, "/api/ota/file/") {
			n = &c.downloadBytes
			c.downloads.Add(1)
		}
		h.ServeHTTP(countingWriter{w, n}, r)
	})
}

// s3Server is otad over loopback with its bundles in a fresh bucket of
// the S3 test server. links makes the Locator from otad's public URL and
// the store.
type s3Server struct {
	env    *testEnv
	base   string
	store  *s3blob.Store
	target testengine.S3Target
	served *counter
}

func newS3Server(t testing.TB, target testengine.S3Target, links func(publicURL string, st *s3blob.Store) *downloads.Locator) *s3Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	st, err := s3blob.Open(t.Context(), s3blob.Config{
		Bucket: target.Bucket, Prefix: s3Prefix, Endpoint: target.Endpoint, Region: target.Region, PathStyle: true,
		Credentials: s3blob.Credentials{AccessKeyID: target.AccessKey, SecretAccessKey: s3blob.Secret(target.SecretKey), Source: "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	env := newTestEnvBlobs(t, func() (blob.Store, error) { return st, nil }, func(c *Config) {
		c.PublicURL = base
		c.MaxUploadBytes = 64 << 20
		c.Downloads = links(base, st)
	})
	s := &s3Server{env: env, base: base, store: st, target: target, served: &counter{}}
	hs := &http.Server{Handler: s.served.wrap(env.srv.Handler()), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return s
}

func presigned(ttl time.Duration, now func() time.Time, bucket downloads.Bucket) func(string, *s3blob.Store) *downloads.Locator {
	return func(publicURL string, st *s3blob.Store) *downloads.Locator {
		if bucket == nil {
			bucket = st
		}
		l, err := downloads.New(downloads.Config{PublicURL: publicURL, Bucket: bucket, TTL: ttl, Now: now})
		if err != nil {
			panic(err)
		}
		return l
	}
}

// uploadOverHTTP deploys content as version on channel stable through
// otad's v1 upload route, over the loopback connection.
func (s *s3Server) uploadOverHTTP(t *testing.T, version string, content []byte) ota.UploadResult {
	t.Helper()
	sum := sha256.Sum256(content)
	resp := curlUpload(t, s.base+"/api/v1/apps/"+testApp+"/bundles", s.env.token, "bundle.zip", content,
		[][2]string{{"version", version}, {"channel", "stable"}, {"checksum", hex.EncodeToString(sum[:])}})
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload %s: status %d, body %s", version, resp.StatusCode, raw)
	}
	var up ota.UploadResult
	if err := json.Unmarshal(raw, &up); err != nil {
		t.Fatal(err)
	}
	return up
}

// device is a plugin on 1.0.0 asking for an update.
func device(id string) ota.UpdateRequest {
	return ota.UpdateRequest{
		Platform: "android", DeviceID: id, AppID: testApp, VersionBuild: "1.0.0", VersionCode: "1",
		VersionOS: "14", VersionName: "1.0.0", PluginVersion: "8.51.14", DefaultChannel: "stable",
	}
}

// noRedirects is a client that reports redirects instead of following
// them, to see where otad sends a device.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestS3PresignedDownloads: otad on the S3 backend without a CDN. An
// upload lands in the bucket under its content address; /updates offers a
// presigned URL of the S3 server, which serves the bytes (whole and
// resumed) without otad; otad's own download routes redirect there; otad
// serves no bundle byte.
func TestS3PresignedDownloads(t *testing.T) {
	s := newS3Server(t, testengine.S3(t), presigned(time.Hour, nil, nil))
	content := zipOf(map[string]string{"index.html": "<html>1.2.0</html>", "app.js": strings.Repeat("notifyAppReady();\n", 3000)})
	up := s.uploadOverHTTP(t, "1.2.0", content)
	sha := up.Bundle.SHA256
	if sha != sha256Hex(content) {
		t.Fatalf("uploaded sha256 %s, want %s", sha, sha256Hex(content))
	}
	// Admin answers carry a URL that does not expire: otad's route.
	if want := s.base + "/api/ota/bundle/" + sha + ".zip"; up.Bundle.URL != want {
		t.Errorf("upload result URL %s, want %s", up.Bundle.URL, want)
	}
	if _, err := s.target.Client(t).StatObject(t.Context(), s.target.Bucket, s3Prefix+"/sha256/"+sha[:2]+"/"+sha, minio.StatObjectOptions{}); err != nil {
		t.Fatalf("the bundle is not at its content address in the bucket: %v", err)
	}

	var ur ota.UpdateResponse
	if code := postJSON(t, s.base+"/updates", device("6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11"), &ur); code != 200 || ur.Version != "1.2.0" || ur.Checksum != sha {
		t.Fatalf("/updates: %d %+v", code, ur)
	}
	u, err := url.Parse(ur.URL)
	if err != nil {
		t.Fatal(err)
	}
	s3URL, _ := url.Parse(s.target.Endpoint)
	if u.Host != s3URL.Host || u.Query().Get("X-Amz-Signature") == "" || u.Query().Get("X-Amz-Expires") != "3600" {
		t.Fatalf("/updates URL %s: want a presigned URL of the S3 server %s lasting 3600 s", ur.URL, s3URL.Host)
	}
	resp, body := download(t, ur.URL)
	if resp.StatusCode != http.StatusOK || sha256Hex(body) != ur.Checksum {
		t.Fatalf("download from the bucket: %d, sha256 %s, want 200 and %s", resp.StatusCode, sha256Hex(body), ur.Checksum)
	}
	half := len(content) / 2
	resp, body = download(t, ur.URL, "Range", fmt.Sprintf("bytes=%d-", half))
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, content[half:]) {
		t.Fatalf("resumed download from the bucket: %d, %d bytes", resp.StatusCode, len(body))
	}

	// The old paths: the content address and the worker's
	// <channel>-<version>.zip both redirect to a fresh presigned URL.
	for _, path := range []string{"/api/ota/bundle/" + sha + ".zip", "/api/ota/bundle/stable-1.2.0.zip"} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			req, _ := http.NewRequestWithContext(t.Context(), method, s.base+path, nil)
			resp, err := noRedirects.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || loc == nil || loc.Host != s3URL.Host || loc.Query().Get("X-Amz-Signature") == "" {
				t.Fatalf("%s %s: %d to %q, want a redirect to a presigned URL", method, path, resp.StatusCode, resp.Header.Get("Location"))
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("%s %s: Cache-Control %q on a redirect to an expiring URL, want no-store", method, path, cc)
			}
		}
		resp, body := download(t, s.base+path) // follows the redirect, as iOS and Android do (same scheme)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
			t.Fatalf("GET %s following the redirect: %d, %d bytes", path, resp.StatusCode, len(body))
		}
	}
	if n := s.served.downloadBytes.Load(); n != 0 {
		t.Errorf("otad served %d bytes on its download routes, want 0 (redirects have no body)", n)
	}
	resp, _ = download(t, s.base+"/api/ota/bundle/"+strings.Repeat("0", 64)+".zip")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown bundle: status %d, want 404", resp.StatusCode)
	}
}

// countingBucket counts signatures.
type countingBucket struct {
	downloads.Bucket
	n atomic.Int64
}

func (c *countingBucket) Presign(ctx context.Context, key, name string, ttl time.Duration) (string, error) {
	c.n.Add(1)
	return c.Bucket.Presign(ctx, key, name, ttl)
}

// TestS3PresignedRenewal: the snapshot prepares /updates answers with a
// presigned URL; once that URL reaches its Renew time (half its life) no
// device gets it: the next check signs a fresh one, and the snapshot is
// renewed in the background so later checks need no signature.
func TestS3PresignedRenewal(t *testing.T) {
	var counting *countingBucket
	var clock *testClock
	s := newS3Server(t, testengine.S3(t), func(publicURL string, st *s3blob.Store) *downloads.Locator {
		counting = &countingBucket{Bucket: st}
		clock = &testClock{now: time.Now()}
		return presigned(time.Hour, clock.Now, counting)(publicURL, st)
	})
	s.uploadOverHTTP(t, "1.2.0", zipOf(map[string]string{"index.html": "<html>1.2.0</html>"}))
	check := func() ota.UpdateResponse {
		t.Helper()
		var ur ota.UpdateResponse
		if code := postJSON(t, s.base+"/updates", device("6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11"), &ur); code != 200 || ur.URL == "" {
			t.Fatalf("/updates: %d %+v", code, ur)
		}
		return ur
	}
	check()
	signed := counting.n.Load()
	for range 5 {
		check()
	}
	if n := counting.n.Load(); n != signed {
		t.Fatalf("%d signatures for 5 checks within the URL's first half-life, want none", n-signed)
	}

	clock.Advance(31 * time.Minute) // past Renew: half the hour
	ur := check()
	if counting.n.Load() == signed {
		t.Fatal("a check past the prepared URL's Renew time got the old URL: no new signature was made")
	}
	resp, body := download(t, ur.URL)
	if resp.StatusCode != http.StatusOK || sha256Hex(body) != ur.Checksum {
		t.Fatalf("download of the renewed URL: %d", resp.StatusCode)
	}
	// The background renewal swaps in fresh views.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cv := s.env.srv.Snapshot().App(testApp).Channels["stable"]
		if cv.URLRenew.After(clock.Now()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the snapshot's link was not renewed: Renew %v, now %v", cv.URLRenew, clock.Now())
		}
		time.Sleep(10 * time.Millisecond)
	}
	signed = counting.n.Load()
	for range 5 {
		check()
	}
	if n := counting.n.Load(); n != signed {
		t.Errorf("%d signatures for 5 checks after the snapshot was renewed, want none", n-signed)
	}
}

// fakeCDN is a caching reverse proxy in front of the bucket's prefix, the
// way CloudFront with origin access fetches from S3: it signs its origin
// requests, keeps each object once fetched, and serves ranges.
type fakeCDN struct {
	srv     *httptest.Server
	client  *minio.Client
	bucket  string
	mu      sync.Mutex
	cache   map[string][]byte
	fetches atomic.Int64
	served  atomic.Int64
}

func newFakeCDN(t testing.TB, target testengine.S3Target) *fakeCDN {
	c := &fakeCDN{client: target.Client(t), bucket: target.Bucket, cache: map[string][]byte{}}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *fakeCDN) serve(w http.ResponseWriter, r *http.Request) {
	key := s3Prefix + r.URL.Path
	// Requests for an object being fetched wait for that fetch (CDNs
	// collapse them), so each object is fetched once.
	c.mu.Lock()
	data, ok := c.cache[key]
	if !ok {
		defer c.mu.Unlock()
	} else {
		c.mu.Unlock()
	}
	if !ok {
		obj, err := c.client.GetObject(r.Context(), c.bucket, key, minio.GetObjectOptions{})
		if err == nil {
			data, err = io.ReadAll(obj)
			obj.Close()
		}
		if err != nil {
			http.Error(w, "origin: "+err.Error(), http.StatusBadGateway)
			return
		}
		c.fetches.Add(1)
		c.cache[key] = data
	}
	http.ServeContent(countingWriter{w, &c.served}, r, "", time.Time{}, bytes.NewReader(data))
}

// cdnDownloads has n devices (8 at a time) check for an update through
// otad and download what they are offered from its URL, checking its
// SHA-256. It returns how many bytes the devices received.
func cdnDownloads(t testing.TB, base string, n int) int64 {
	var got atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	client := &http.Client{}
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				raw, _ := json.Marshal(device(fmt.Sprintf("00000000-0000-4000-8000-%012d", i)))
				resp, err := client.Post(base+"/updates", "application/json", bytes.NewReader(raw))
				if err != nil {
					t.Error(err)
					return
				}
				var ur ota.UpdateResponse
				err = json.NewDecoder(resp.Body).Decode(&ur)
				resp.Body.Close()
				if err != nil || ur.URL == "" {
					t.Errorf("device %d: /updates %v %+v", i, err, ur)
					return
				}
				resp, err = client.Get(ur.URL)
				if err != nil {
					t.Error(err)
					return
				}
				h := sha256.New()
				m, err := io.Copy(h, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || hex.EncodeToString(h.Sum(nil)) != ur.Checksum {
					t.Errorf("device %d: download %d, %v, sha256 mismatch %v", i, resp.StatusCode, err, hex.EncodeToString(h.Sum(nil)) != ur.Checksum)
					return
				}
				got.Add(m)
			}
		})
	}
	wg.Wait()
	return got.Load()
}

func cdnLinks(cdn *fakeCDN) func(string, *s3blob.Store) *downloads.Locator {
	return func(publicURL string, st *s3blob.Store) *downloads.Locator {
		l, err := downloads.New(downloads.Config{PublicURL: publicURL, BaseURL: cdn.srv.URL + "/", Bucket: st})
		if err != nil {
			panic(err)
		}
		return l
	}
}

// TestS3CDNDownloadsBypassOtad: with a CDN base in front of the bucket,
// 1,000 devices check and download; otad serves none of the bundle's
// bytes, the CDN fetches it from the bucket once, and otad's own route
// redirects to the CDN.
func TestS3CDNDownloadsBypassOtad(t *testing.T) {
	target := testengine.S3(t)
	cdn := newFakeCDN(t, target)
	s := newS3Server(t, target, cdnLinks(cdn))
	content := zipOf(map[string]string{"index.html": "<html>1.2.0</html>", "app.bin": string(blobtest.Data(64, 64<<10))})
	up := s.uploadOverHTTP(t, "1.2.0", content)
	if want := cdn.srv.URL + "/sha256/" + up.Bundle.SHA256[:2] + "/" + up.Bundle.SHA256; up.Bundle.URL != want {
		t.Fatalf("upload result URL %s, want the CDN's %s", up.Bundle.URL, want)
	}
	const devices = 1000
	got := cdnDownloads(t, s.base, devices)
	if got != devices*int64(len(content)) {
		t.Errorf("devices received %d bytes, want %d", got, devices*len(content))
	}
	if n := s.served.downloadBytes.Load(); n != 0 {
		t.Errorf("otad served %d bundle bytes for %d downloads through a CDN, want 0", n, devices)
	}
	if f := cdn.fetches.Load(); f != 1 {
		t.Errorf("the CDN fetched the bundle from the bucket %d times, want 1", f)
	}
	t.Logf("%d downloads of %d bytes: otad served %d bytes on its download routes and %d bytes of /updates answers; the CDN served %d and fetched from the bucket %d time(s)",
		devices, len(content), s.served.downloadBytes.Load(), s.served.otherBytes.Load(), cdn.served.Load(), cdn.fetches.Load())

	resp, err := noRedirects.Get(s.base + "/api/ota/bundle/" + up.Bundle.SHA256 + ".zip")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != up.Bundle.URL {
		t.Errorf("otad's route: %d to %q, want a redirect to %s", resp.StatusCode, resp.Header.Get("Location"), up.Bundle.URL)
	}
}

// BenchmarkDownloads is issue 11's benchmark: devices downloading a 25 MB
// bundle, each op one device's check and download, with a CDN base in
// front of the bucket ("cdn") and, for comparison, from otad itself with
// bundles in its directory ("origin"). It reports the bytes otad served
// per op on its bundle route (otad-bytes/op) and for the /updates answer
// (updates-bytes/op), and the CDN's fetches from the bucket. Run:
//
//	source /tmp/ota-engines/env
//	go test -run '^$' -bench Downloads -benchtime 1000x ./internal/server/
func BenchmarkDownloads(b *testing.B) {
	// Random bytes do not compress: the zip is 25 MB.
	content := zipOf(map[string]string{"index.html": "<html>1.2.0</html>", "app.bin": string(blobtest.Data(25, 25<<20))})
	run := func(b *testing.B, base string, served *counter) {
		b.SetBytes(int64(len(content)))
		b.ResetTimer()
		got := cdnDownloads(b, base, b.N)
		b.StopTimer()
		if got != int64(b.N)*int64(len(content)) {
			b.Fatalf("devices received %d bytes, want %d", got, b.N*len(content))
		}
		b.ReportMetric(float64(served.downloadBytes.Load())/float64(b.N), "otad-bytes/op")
		b.ReportMetric(float64(served.otherBytes.Load())/float64(b.N), "updates-bytes/op")
	}
	b.Run("cdn", func(b *testing.B) {
		target := testengine.S3(b)
		cdn := newFakeCDN(b, target)
		s := newS3Server(b, target, cdnLinks(cdn))
		s.env.publish(testApp, "stable", "1.2.0", content)
		run(b, s.base, s.served)
		b.ReportMetric(float64(cdn.fetches.Load()), "origin-fetches")
	})
	b.Run("origin", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		base := "http://" + ln.Addr().String()
		env := newTestEnv(b, func(c *Config) { c.PublicURL = base })
		env.srv.log = slog.New(slog.NewTextHandler(io.Discard, nil))
		served := &counter{}
		hs := &http.Server{Handler: served.wrap(env.srv.Handler()), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		b.Cleanup(func() { _ = hs.Close() })
		env.publish(testApp, "stable", "1.2.0", content)
		run(b, base, served)
	})
}

// TestS3RejectedUploadLeftForGC: bytes of an upload refused after they
// were stored stay in a bucket that other replicas share (one of them may
// be uploading the same bytes right now); garbage collection removes them
// once past its grace period. Nothing refers to them.
func TestS3RejectedUploadLeftForGC(t *testing.T) {
	s := newS3Server(t, testengine.S3(t), presigned(time.Hour, nil, nil))
	notAZip := blobtest.Data(70, 5000)
	resp := curlUpload(t, s.base+"/api/v1/apps/"+testApp+"/bundles", s.env.token, "bundle.zip", notAZip,
		[][2]string{{"version", "1.2.0"}, {"channel", "stable"}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("upload of a non-zip: status %d, want 422", resp.StatusCode)
	}
	if _, err := s.store.Stat(t.Context(), blobtest.Key(notAZip)); err != nil {
		t.Errorf("the rejected bytes are gone from the shared bucket (%v); they are GC's to remove", err)
	}
	refs, err := s.env.store.ReferencedBlobs(t.Context())
	if err != nil || refs[blobtest.Key(notAZip)] {
		t.Errorf("the rejected upload is referenced: %v", err)
	}
}

// tcpProxy forwards a loopback port to the S3 server and can be cut and
// restored, to play a bucket that goes away.
type tcpProxy struct {
	t      testing.TB
	addr   string
	to     string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
}

func newTCPProxy(t testing.TB, to string) *tcpProxy {
	p := &tcpProxy{t: t, to: to, conns: map[net.Conn]struct{}{}}
	p.up("127.0.0.1:0")
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) up(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr, p.closed = ln, ln.Addr().String(), false
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.to)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[s] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
}

// down closes the port and every connection through it.
func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// TestS3BucketDown: while the bucket cannot be reached, devices are still
// answered from the snapshot (a presigned URL needs no request to make)
// and otad's route still redirects; uploads fail cleanly with 500 and, once
// the bucket is back, succeed, with nothing left of the failed ones.
func TestS3BucketDown(t *testing.T) {
	target := testengine.S3(t)
	ep, _ := url.Parse(target.Endpoint)
	proxy := newTCPProxy(t, ep.Host)
	via := target
	via.Endpoint = "http://" + proxy.addr
	s := newS3Server(t, via, presigned(time.Hour, nil, nil))
	up := s.uploadOverHTTP(t, "1.2.0", zipOf(map[string]string{"index.html": "<html>1.2.0</html>"}))

	proxy.down()
	for i := range 20 {
		var ur ota.UpdateResponse
		if code := postJSON(t, s.base+"/updates", device(fmt.Sprintf("00000000-0000-4000-8000-%012d", i)), &ur); code != 200 || ur.Version != "1.2.0" || ur.URL == "" {
			t.Fatalf("/updates with the bucket down: %d %+v", code, ur)
		}
	}
	resp, err := noRedirects.Get(s.base + "/api/ota/bundle/" + up.Bundle.SHA256 + ".zip")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("otad's route with the bucket down: %d, want the redirect anyway", resp.StatusCode)
	}
	content := zipOf(map[string]string{"index.html": "<html>1.3.0</html>"})
	sum := sha256.Sum256(content)
	resp = curlUpload(t, s.base+"/api/v1/apps/"+testApp+"/bundles", s.env.token, "bundle.zip", content,
		[][2]string{{"version", "1.3.0"}, {"channel", "stable"}, {"checksum", hex.EncodeToString(sum[:])}})
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("upload with the bucket down: %d %s, want 500", resp.StatusCode, raw)
	}
	if ch, err := s.env.store.GetChannel(t.Context(), testApp, "stable"); err != nil || ch.Active != "1.2.0" {
		t.Fatalf("after a failed upload the channel serves %q (%v), want 1.2.0", ch.Active, err)
	}

	proxy.up(proxy.addr)
	s.uploadOverHTTP(t, "1.3.0", content)
	keys, _ := func() ([]string, error) {
		var ks []string
		for obj := range target.Client(t).ListObjects(t.Context(), target.Bucket, minio.ListObjectsOptions{Recursive: true}) {
			ks = append(ks, obj.Key)
		}
		return ks, nil
	}()
	for _, k := range keys {
		if strings.Contains(k, "/tmp/") {
			t.Errorf("a temporary object is left: %s", k)
		}
	}
	if len(keys) != 2 {
		t.Errorf("bucket holds %v, want the two bundles", keys)
	}
}

// TestS3PresignedRenewalCapawesome: the other plugin's check is answered
// from the same prepared link, and past its Renew time it gets a freshly
// signed one too, never the stale URL.
func TestS3PresignedRenewalCapawesome(t *testing.T) {
	var counting *countingBucket
	var clock *testClock
	s := newS3Server(t, testengine.S3(t), func(publicURL string, st *s3blob.Store) *downloads.Locator {
		counting = &countingBucket{Bucket: st}
		clock = &testClock{now: time.Now()}
		return presigned(time.Hour, clock.Now, counting)(publicURL, st)
	})
	s.uploadOverHTTP(t, "1.2.0", zipOf(map[string]string{"index.html": "<html>1.2.0</html>"}))
	const dev = "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11"
	latest := func() ota.LatestBundle {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, s.base+"/v1/apps/"+testApp+
			"/bundles/latest?appVersionCode=1&appVersionName=1.0.0&deviceId="+dev+"&osVersion=14&platform=0&pluginVersion=8.4.1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Capawesome-Device-Id", dev)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lb ota.LatestBundle
		if err := json.NewDecoder(resp.Body).Decode(&lb); err != nil || resp.StatusCode != http.StatusOK || lb.URL == "" {
			t.Fatalf("bundles/latest: %d %+v %v", resp.StatusCode, lb, err)
		}
		return lb
	}
	first := latest()
	signed := counting.n.Load()
	if again := latest(); again.URL != first.URL || counting.n.Load() != signed {
		t.Fatalf("a second check within the link's first half-life signed again or changed the URL")
	}
	clock.Advance(31 * time.Minute)
	lb := latest()
	// The signer keeps the real clock, so only the count tells a fresh
	// signature from the prepared one.
	if counting.n.Load() == signed {
		t.Fatal("a check past the prepared URL's Renew time got the old URL: no new signature was made")
	}
	resp, body := download(t, lb.URL)
	if resp.StatusCode != http.StatusOK || sha256Hex(body) != lb.Checksum {
		t.Fatalf("download of the renewed URL: %d", resp.StatusCode)
	}
}
