package server

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	s3blob "github.com/otaship/ota/internal/blob/s3"
	"github.com/otaship/ota/internal/delta/deltatest"
	downloads "github.com/otaship/ota/internal/download"
	"github.com/otaship/ota/internal/testengine"
	"github.com/otaship/ota/pkg/ota"
)

// installFrom installs ans on a fresh Android device with nothing built
// in and checks it ends with exactly dir.
func installFrom(t *testing.T, ans ota.UpdateResponse, dir string) deltatest.Result {
	t.Helper()
	d := deltaDevice(t, "android", "", false)
	dest := filepath.Join(t.TempDir(), "bundle")
	r, err := d.Install(context.Background(), ans, dest)
	if err != nil {
		t.Fatalf("install: %v (stats %v)", err, r.Stats)
	}
	if diff, err := deltatest.SameTree(dir, dest); err != nil || diff != "" {
		t.Fatalf("installed bundle differs from the web dir: %s %v", diff, err)
	}
	return r
}

// TestDeltaS3Presigned: with files in a bucket and no CDN, a delta
// answer's entries are presigned URLs of the bucket, a device installs
// from them without otad serving a byte, otad's file route redirects, and
// once the links reach their renew time the next answer carries fresh
// ones.
func TestDeltaS3Presigned(t *testing.T) {
	var clock *testClock
	var counting *countingBucket
	s := newS3Server(t, testengine.S3(t), func(publicURL string, st *s3blob.Store) *downloads.Locator {
		clock = &testClock{now: time.Now()}
		counting = &countingBucket{Bucket: st}
		return presigned(time.Hour, clock.Now, counting)(publicURL, st)
	})
	dir := filepath.Join(t.TempDir(), "web")
	webDir(t, dir, 1)
	c := newTestClient(t, s.base, s.env.token)
	deltaDeploy(t, c, testApp, "production", "1.0.1", dir, nil)

	s3URL, _ := url.Parse(s.target.Endpoint)
	presignedEntries := func(ans ota.UpdateResponse) {
		t.Helper()
		if ans.Version != "1.0.1" || len(ans.Manifest) == 0 {
			t.Fatalf("answer: version %s, %d files", ans.Version, len(ans.Manifest))
		}
		for _, e := range ans.Manifest {
			u, err := url.Parse(e.DownloadURL)
			if err != nil || u.Host != s3URL.Host || u.Query().Get("X-Amz-Signature") == "" {
				t.Fatalf("%s: download_url %s, want a presigned URL of %s", e.FileName, e.DownloadURL, s3URL.Host)
			}
		}
	}
	ans := check(t, s.base, "android", "8.51.14", "1.0.0", "")
	presignedEntries(ans)
	installFrom(t, ans, dir)
	if n := s.served.downloadBytes.Load(); n != 0 {
		t.Errorf("otad served %d bytes on its download routes, want 0", n)
	}

	// otad's own file route redirects to a fresh presigned URL.
	key := strings.Split(ans.Manifest[0].DownloadURL, "?")[0]
	key = key[strings.LastIndex(key, "/")+1:]
	resp, err := noRedirects.Get(s.base + "/api/ota/file/" + key)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc == nil || loc.Host != s3URL.Host {
		t.Errorf("file route: %d to %q, want a redirect to the bucket", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = noRedirects.Get(s.base + "/api/ota/file/" + strings.Repeat("0", 64))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown file: status %d, want 404", resp.StatusCode)
	}

	// Within their first half-life the prepared links are handed out
	// as they are; past it the answer is built with fresh ones (the
	// bucket's clock is real, so a signature made in the same second is
	// the same URL: count signatures).
	signed := counting.n.Load()
	check(t, s.base, "android", "8.51.14", "1.0.0", "")
	if n := counting.n.Load(); n != signed {
		t.Errorf("%d signatures for a check within the links' first half-life, want none", n-signed)
	}
	clock.Advance(31 * time.Minute)
	fresh := check(t, s.base, "android", "8.51.14", "1.0.0", "")
	presignedEntries(fresh)
	if n := counting.n.Load(); n < signed+int64(len(fresh.Manifest)) {
		t.Errorf("%d signatures for a check past the links' renew time, want one per file (%d) or more", n-signed, len(fresh.Manifest))
	}
	installFrom(t, fresh, dir)
}

// TestDeltaS3CDN: with a CDN in front of the bucket, entries point at
// the CDN's copy of each file form, which devices install from.
func TestDeltaS3CDN(t *testing.T) {
	target := testengine.S3(t)
	cdn := newFakeCDN(t, target)
	s := newS3Server(t, target, cdnLinks(cdn))
	dir := filepath.Join(t.TempDir(), "web")
	webDir(t, dir, 1)
	deltaDeploy(t, newTestClient(t, s.base, s.env.token), testApp, "production", "1.0.1", dir, nil)
	ans := check(t, s.base, "ios", "8.51.14", "1.0.0", "")
	for _, e := range ans.Manifest {
		if !strings.HasPrefix(e.DownloadURL, cdn.srv.URL+"/sha256/") {
			t.Fatalf("%s: download_url %s, want the CDN's", e.FileName, e.DownloadURL)
		}
	}
	installFrom(t, ans, dir)
	if n := s.served.downloadBytes.Load(); n != 0 {
		t.Errorf("otad served %d bytes on its download routes, want 0", n)
	}
}
