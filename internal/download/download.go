// Package download decides the URL a device downloads a content-addressed
// blob from: otad's own route, a CDN (in front of otad or of the bucket),
// or a presigned URL of the bucket. It is the one place download URLs are
// made, for bundles and for any other content-addressed file (the files
// of delta updates): callers describe the blob with an Object and get a
// Link.
//
// The modes, from the configuration:
//
//	blobs        --download-base-url   devices download from          otad's own route
//	local dir    unset                 PUBLIC_URL + route               serves the bytes
//	local dir    https://cdn/…         BASE + route (CDN → otad)        serves the bytes
//	bucket       https://cdn/…         BASE/sha256/ab/<key> (CDN → bucket)  redirects to the CDN
//	bucket       unset                 a presigned URL of the bucket    redirects to a fresh one
//
// CDN and origin URLs never change. A presigned URL expires after TTL, so
// a Link carries a Renew time: whoever keeps links (otad's device
// snapshot) must stop handing one out at Renew and ask again; every link
// handed out before its Renew stays valid for more than half the TTL.
package download

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Presigned URL lifetimes: the default, and SigV4's bounds.
const (
	DefaultTTL = time.Hour
	MinTTL     = 2 * time.Minute
	MaxTTL     = 7 * 24 * time.Hour
	// presignTimeout bounds one signature. Signing makes no request (the
	// bucket's region is known), so this only guards against a surprise.
	presignTimeout = 10 * time.Second
)

// Object is one content-addressed blob as devices download it.
type Object struct {
	// Key is the blob's key in the blob store: the SHA-256 of its bytes.
	Key string
	// Name is the file name devices see, with its extension, e.g.
	// "<sha256>.zip". Presigned URLs serve the blob under it, with the
	// type its extension says.
	Name string
	// Route is otad's own path serving the blob, from the public URL, e.g.
	// "/api/ota/bundle/<sha256>.zip".
	Route string
}

// Link is where a device downloads an object.
type Link struct {
	URL string
	// Renew is when the URL must stop being handed out (it then still
	// works for a while, see the package comment); zero: never.
	Renew time.Time
}

// Bucket is a blob store devices can download from without otad: the
// S3 backend (blob/s3.Store).
type Bucket interface {
	// ObjectPath is key's path below the store's prefix, as a CDN whose
	// origin is that prefix sees it: sha256/ab/<key>.
	ObjectPath(key string) string
	// Presign returns a URL that GETs key for ttl, as a file called name.
	Presign(ctx context.Context, key, name string, ttl time.Duration) (string, error)
}

// Config chooses the mode.
type Config struct {
	// PublicURL is otad's own absolute URL, without a trailing slash.
	PublicURL string
	// BaseURL is a CDN's URL (--download-base-url), "" for none.
	BaseURL string
	// Bucket is where the blobs are when they are not in otad's local
	// directory, nil otherwise.
	Bucket Bucket
	// TTL is the lifetime of presigned URLs (0: DefaultTTL).
	TTL time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Log receives signing failures (nil: slog.Default()).
	Log *slog.Logger
}

// Mode names of Locator.Mode.
const (
	ModeOrigin    = "origin"    // otad serves the bytes at PublicURL
	ModeCDN       = "cdn"       // a CDN in front of otad or of the bucket
	ModePresigned = "presigned" // presigned URLs of the bucket
)

// Locator hands out download links. It is safe for concurrent use.
type Locator struct {
	mode      string
	publicURL string
	baseURL   string
	bucket    Bucket
	ttl       time.Duration
	now       func() time.Time
	log       *slog.Logger

	// Presigned links, by Key and Name; see Link.
	mu        sync.Mutex
	cache     map[string]minted
	pruneSize int
}

type minted struct {
	url string
	at  time.Time
}

// New checks the configuration and returns its Locator.
func New(cfg Config) (*Locator, error) {
	if err := CheckURL("public URL", cfg.PublicURL); err != nil {
		return nil, err
	}
	if cfg.BaseURL != "" {
		if err := CheckURL("download base URL", cfg.BaseURL); err != nil {
			return nil, err
		}
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < MinTTL || cfg.TTL > MaxTTL {
		return nil, fmt.Errorf("presign TTL %s: want between %s and %s (the longest S3 signatures last)", cfg.TTL, MinTTL, MaxTTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	l := &Locator{
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		baseURL:   strings.TrimRight(cfg.BaseURL, "/"),
		bucket:    cfg.Bucket,
		ttl:       cfg.TTL,
		now:       cfg.Now,
		log:       cfg.Log,
	}
	switch {
	case l.baseURL != "":
		l.mode = ModeCDN
	case l.bucket != nil:
		l.mode = ModePresigned
		l.cache = map[string]minted{}
	default:
		l.mode = ModeOrigin
	}
	return l, nil
}

// CheckURL accepts an absolute http(s) URL without query, fragment or
// credentials: a base that paths are appended to.
func CheckURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q must be an absolute http(s) URL such as https://cdn.example.com/ota", what, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%s %q: paths are appended to it, so it may have no query, fragment or credentials", what, raw)
	}
	return nil
}

// Mode says how links are made: ModeOrigin, ModeCDN or ModePresigned.
func (l *Locator) Mode() string { return l.mode }

// TTL is the lifetime of presigned URLs.
func (l *Locator) TTL() time.Duration { return l.ttl }

// Redirects reports whether the bytes are somewhere otad does not serve
// from (the bucket): otad's own download routes then redirect to Link.
func (l *Locator) Redirects() bool { return l.bucket != nil }

// RenewEvery is how often a holder of links must renew them: a link
// handed out at most this long after it was made is never past its Renew
// time (0: links never need renewing).
func (l *Locator) RenewEvery() time.Duration {
	if l.mode != ModePresigned {
		return 0
	}
	return l.ttl / 8
}

// Fresh reports whether a link with this Renew time may still be handed
// out.
func (l *Locator) Fresh(renew time.Time) bool {
	return renew.IsZero() || l.now().Before(renew)
}

// Permanent is a URL of obj that never expires, for the admin API and
// people: the CDN's, else otad's own route (which redirects when the
// bytes are in the bucket).
func (l *Locator) Permanent(obj Object) string {
	if l.mode == ModeCDN {
		return l.cdnURL(obj)
	}
	return l.publicURL + obj.Route
}

func (l *Locator) cdnURL(obj Object) string {
	if l.bucket != nil {
		return l.baseURL + "/" + l.bucket.ObjectPath(obj.Key)
	}
	return l.baseURL + obj.Route
}

// Link returns where a device downloads obj now.
//
// A presigned link is reused while it is younger than 3/8 of the TTL (so a holder renewing every
// RenewEvery never holds one past its Renew), and its Renew is half the
// TTL after it was signed, so a device given it before then has more than
// half the TTL to start its download.
func (l *Locator) Link(obj Object) Link {
	if l.mode != ModePresigned {
		return Link{URL: l.Permanent(obj)}
	}
	now := l.now()
	ck := obj.Key + "\x00" + obj.Name
	l.mu.Lock()
	m, ok := l.cache[ck]
	l.mu.Unlock()
	if !ok || !now.Before(m.at.Add(l.ttl/2-l.RenewEvery())) {
		ctx, cancel := context.WithTimeout(context.Background(), presignTimeout)
		u, err := l.bucket.Presign(ctx, obj.Key, obj.Name, l.ttl)
		cancel()
		if err != nil {
			// otad's own route redirects to a presigned URL made when the
			// device asks; renew soon to try again.
			l.log.Warn("presign a download URL; devices are sent to otad's own route, which redirects",
				"key", obj.Key, "err", err)
			return Link{URL: l.publicURL + obj.Route, Renew: now.Add(l.RenewEvery())}
		}
		m = minted{url: u, at: now}
		l.mu.Lock()
		l.cache[ck] = m
		l.pruneLocked(now)
		l.mu.Unlock()
	}
	return Link{URL: m.url, Renew: m.at.Add(l.ttl / 2)}
}

// pruneLocked drops links too old to hand out, once the cache doubled
// since the last prune, so it holds about what is linked now.
func (l *Locator) pruneLocked(now time.Time) {
	if len(l.cache) < 2*l.pruneSize+1024 {
		return
	}
	for k, m := range l.cache {
		if !now.Before(m.at.Add(l.ttl / 2)) {
			delete(l.cache, k)
		}
	}
	l.pruneSize = len(l.cache)
}

// ErrNoBucket is returned by Redirect when the bytes are local.
var ErrNoBucket = errors.New("download: blobs are local, nothing to redirect to")

// Redirect is the URL otad's own route sends a client to: a link made
// now, fresh whatever the cache holds.
func (l *Locator) Redirect(obj Object) (string, error) {
	if l.bucket == nil {
		return "", ErrNoBucket
	}
	if l.mode == ModeCDN {
		return l.cdnURL(obj), nil
	}
	link := l.Link(obj)
	if link.URL == l.publicURL+obj.Route {
		// Signing failed: sending the client back here would loop.
		return "", fmt.Errorf("download: cannot presign a URL for %s", obj.Key)
	}
	return link.URL, nil
}
