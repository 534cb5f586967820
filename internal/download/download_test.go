package download_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otaship/ota/internal/download"
)

// signer is a unit-test Bucket: it counts signatures and stamps each URL
// with its number and signing time. The real S3 backend's signatures are
// tested in blob/s3 and, end to end, in internal/server.
type signer struct {
	mu    sync.Mutex
	n     int
	now   func() time.Time
	fail  error
	names []string
}

func (s *signer) ObjectPath(key string) string { return "sha256/" + key[:2] + "/" + key }

func (s *signer) Presign(_ context.Context, key, name string, ttl time.Duration) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return "", s.fail
	}
	s.n++
	s.names = append(s.names, name)
	return fmt.Sprintf("https://bucket.example/%s?sig=%d&at=%d&ttl=%s", key, s.n, s.now().Unix(), ttl), nil
}

var sha = strings.Repeat("ab", 32)

func obj() download.Object {
	return download.Object{Key: sha, Name: sha + ".zip", Route: "/api/ota/bundle/" + sha + ".zip"}
}

func TestModes(t *testing.T) {
	b := &signer{now: time.Now}
	tests := []struct {
		name      string
		cfg       download.Config
		mode      string
		url       string
		permanent string
		redirects bool
	}{
		{"local, no CDN", download.Config{PublicURL: "https://ota.example.com/"}, download.ModeOrigin,
			"https://ota.example.com/api/ota/bundle/" + sha + ".zip", "https://ota.example.com/api/ota/bundle/" + sha + ".zip", false},
		{"local behind a CDN", download.Config{PublicURL: "https://ota.example.com", BaseURL: "https://cdn.example.com/"}, download.ModeCDN,
			"https://cdn.example.com/api/ota/bundle/" + sha + ".zip", "https://cdn.example.com/api/ota/bundle/" + sha + ".zip", false},
		{"bucket behind a CDN", download.Config{PublicURL: "https://ota.example.com", BaseURL: "https://cdn.example.com/ota", Bucket: b}, download.ModeCDN,
			"https://cdn.example.com/ota/sha256/ab/" + sha, "https://cdn.example.com/ota/sha256/ab/" + sha, true},
		{"bucket, presigned", download.Config{PublicURL: "https://ota.example.com", Bucket: b}, download.ModePresigned,
			"https://bucket.example/" + sha + "?sig=1", "https://ota.example.com/api/ota/bundle/" + sha + ".zip", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := download.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if l.Mode() != tt.mode || l.Redirects() != tt.redirects {
				t.Errorf("Mode %s Redirects %v, want %s %v", l.Mode(), l.Redirects(), tt.mode, tt.redirects)
			}
			link := l.Link(obj())
			if !strings.HasPrefix(link.URL, tt.url) {
				t.Errorf("Link = %s, want %s…", link.URL, tt.url)
			}
			if (tt.mode == download.ModePresigned) == link.Renew.IsZero() {
				t.Errorf("Renew = %v: only presigned links renew", link.Renew)
			}
			if got := l.Permanent(obj()); got != tt.permanent {
				t.Errorf("Permanent = %s, want %s", got, tt.permanent)
			}
			if (l.RenewEvery() > 0) != (tt.mode == download.ModePresigned) {
				t.Errorf("RenewEvery = %s in mode %s", l.RenewEvery(), tt.mode)
			}
			r, err := l.Redirect(obj())
			if tt.redirects != (err == nil) {
				t.Errorf("Redirect = %q, %v; want one only when the bytes are in the bucket", r, err)
			}
			if err != nil && !errors.Is(err, download.ErrNoBucket) {
				t.Errorf("Redirect error %v, want ErrNoBucket", err)
			}
		})
	}
	if len(b.names) == 0 || b.names[0] != sha+".zip" {
		t.Errorf("presigned with names %v, want the object's name", b.names)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, cfg := range []download.Config{
		{PublicURL: ""},
		{PublicURL: "ota.example.com"},
		{PublicURL: "https://ota.example.com", BaseURL: "cdn.example.com"},
		{PublicURL: "https://ota.example.com", BaseURL: "ftp://cdn.example.com"},
		{PublicURL: "https://ota.example.com", BaseURL: "https://cdn.example.com/?x=1"},
		{PublicURL: "https://ota.example.com", BaseURL: "https://cdn.example.com/#x"},
		{PublicURL: "https://ota.example.com", BaseURL: "https://u:p@cdn.example.com/"},
		{PublicURL: "https://ota.example.com", TTL: time.Minute},
		{PublicURL: "https://ota.example.com", TTL: 8 * 24 * time.Hour},
		{PublicURL: "https://ota.example.com", TTL: -time.Hour},
	} {
		if _, err := download.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// TestPresignedNeverNearlyExpired walks a clock over several TTLs, asking
// for a link as a device check would and renewing as a snapshot holder
// would: every link handed out before its Renew has more than half the
// TTL left, and signing happens about twice per TTL, not per request.
func TestPresignedNeverNearlyExpired(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	clock := func() time.Time { return now }
	b := &signer{now: clock}
	const ttl = time.Hour
	l, err := download.New(download.Config{PublicURL: "https://ota.example.com", Bucket: b, TTL: ttl, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	held := l.Link(obj()) // what the snapshot holds
	lastRenew := now
	signedAt := map[string]time.Time{held.URL: now}
	for now.Before(start.Add(5 * ttl)) {
		now = now.Add(17 * time.Second)
		if now.Sub(lastRenew) >= l.RenewEvery() {
			held = l.Link(obj())
			lastRenew = now
			if _, ok := signedAt[held.URL]; !ok {
				signedAt[held.URL] = now
			}
		}
		link := held
		if !l.Fresh(link.Renew) {
			t.Fatalf("at %s the held link is past its Renew %s: the holder renewed every %s", now.Sub(start), link.Renew.Sub(start), l.RenewEvery())
		}
		if left := signedAt[link.URL].Add(ttl).Sub(now); left <= ttl/2 {
			t.Fatalf("at %s a device gets a link with %s left, want more than %s", now.Sub(start), left, ttl/2)
		}
	}
	// One signature per 3/8 of the TTL: 40/3 over 5 TTLs.
	if b.n < 12 || b.n > 15 {
		t.Errorf("%d signatures over 5 TTLs, want about 13: one per 3/8 TTL, not one per request", b.n)
	}
	// A link asked for directly (the redirect) is never one about to go.
	r, err := l.Redirect(obj())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := signedAt[r]; ok && now.Sub(signedAt[r]) > 3*ttl/8 {
		t.Errorf("Redirect gave a link signed %s ago", now.Sub(signedAt[r]))
	}
}

func TestPresignFailureFallsBackToOrigin(t *testing.T) {
	b := &signer{now: time.Now, fail: errors.New("no region")}
	l, err := download.New(download.Config{PublicURL: "https://ota.example.com", Bucket: b,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	link := l.Link(obj())
	if link.URL != "https://ota.example.com"+obj().Route || link.Renew.IsZero() {
		t.Errorf("Link when signing fails = %+v, want otad's route, renewed soon", link)
	}
	if _, err := l.Redirect(obj()); err == nil {
		t.Error("Redirect when signing fails: want an error, not a loop back to otad")
	}
}

func TestConcurrentLinks(t *testing.T) {
	b := &signer{now: time.Now}
	l, err := download.New(download.Config{PublicURL: "https://ota.example.com", Bucket: b})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				k := fmt.Sprintf("%064x", (i*1000+j)%50)
				if link := l.Link(download.Object{Key: k, Name: k + ".zip", Route: "/r"}); !strings.Contains(link.URL, k) {
					t.Errorf("link %s for key %s", link.URL, k)
				}
			}
		})
	}
	wg.Wait()
}
