// Package server is otad's HTTP layer: the echo router, the device endpoints
// of the updater plugin's protocol, the admin API (with the old worker's
// paths as aliases), authentication middleware and the JSON error envelope.
//
// It depends on store.Store and blob.Store only through their interfaces,
// and keeps the device-facing state in an in-memory update.Snapshot that
// every write refreshes, so device requests never touch the disk.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/auth"
	"github.com/otaship/ota/internal/blob"
	downloads "github.com/otaship/ota/internal/download"
	"github.com/otaship/ota/internal/landing"
	"github.com/otaship/ota/internal/metrics"
	"github.com/otaship/ota/internal/offers"
	"github.com/otaship/ota/internal/ratelimit"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/internal/webhook"
	"github.com/otaship/ota/pkg/ota"
)

// Config holds the server's settings. PublicURL is the only source of the
// absolute URLs the server returns; the request's Host header never is.
type Config struct {
	PublicURL      string        // e.g. https://ota.example.com (no trailing slash needed)
	DefaultApp     string        // the app meant by requests without app_id
	TokenTTL       time.Duration // lifetime of login tokens
	MaxUploadBytes int64         // largest accepted bundle
	MaxJSONBytes   int64         // largest accepted JSON body (0: 1 MiB)
	Version        ota.VersionInfo
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TrustProxy makes rate limits key on X-Forwarded-For/X-Real-IP; set it
	// only behind a proxy that overwrites them.
	TrustProxy bool
	// IPv6Prefix is how many leading bits of an IPv6 client address rate
	// limits count as one client (0: 64, 128: the whole address).
	IPv6Prefix int
	// LoginGuard limits login attempts; nil means ratelimit.NewLogin's
	// in-memory limits of this process.
	LoginGuard ratelimit.LoginGuard
	// DeviceRateLimit is how many requests per second one client address
	// may send to each group of device endpoints (update checks, stats,
	// channel), with bursts of five times that; 0 turns the limit off.
	DeviceRateLimit float64
	// BcryptCost is the cost users' password hashes are made with (0:
	// bcrypt's default), so a login for an unknown user costs the same.
	BcryptCost int
	// UploadIdleTimeout fails an upload when no byte of its body arrives
	// for this long (0: 60 s).
	UploadIdleTimeout time.Duration
	// DownloadIdleTimeout fails a download when a piece of
	// downloadChunk bytes cannot be written for this long (0: 60 s).
	DownloadIdleTimeout time.Duration
	// BodyReadTimeout bounds the time any other request may take to send
	// its body (0: 60 s).
	BodyReadTimeout time.Duration
	// MetricsToken, when set, serves /metrics on this handler to requests
	// bearing it; without it /metrics is only on MetricsHandler.
	MetricsToken string
	// Webhooks tunes webhook delivery (tests shorten its waits).
	Webhooks webhook.Options
	// Downloads says where devices download bundles from (a CDN, presigned
	// URLs of the bucket); nil is otad's own route at PublicURL.
	Downloads *downloads.Locator
	// HealthMemoryBytes bounds the memory of the device ids device health
	// remembers, every version together (0: 64 MiB).
	HealthMemoryBytes int64
	// OfferMemoryBytes bounds the memory of what was offered to each
	// device (0: offers.DefaultMaxBytes, about two million devices).
	OfferMemoryBytes int64
	// RampTick is how often ramp schedules are looked at (0: 30 s; < 0:
	// never by themselves, for tests that tick them).
	RampTick time.Duration
}

// Server serves otad's HTTP API.
type Server struct {
	cfg    Config
	store  store.Store
	blobs  blob.Store
	tokens *auth.Issuer
	log    *slog.Logger
	e      *echo.Echo

	// snap is the device-facing state; writeMu serialises its refreshes so
	// two writes cannot swap in snapshots out of order.
	snap    atomic.Pointer[update.Snapshot]
	writeMu sync.Mutex
	ready   atomic.Bool
	// landing answers GET /; MountDashboard replaces it to name the
	// dashboard.
	landing atomic.Pointer[http.Handler]
	// loading holds the apps being loaded into snap (see lazyload.go).
	loadMu  sync.Mutex
	loading map[string]*appLoad
	// testHookAppRead, when set, runs between an app load's read and its
	// swap, so a test can put a write exactly there.
	testHookAppRead func(appID string)
	// testDownloadChunk, when set, replaces downloadChunk.
	testDownloadChunk int64
	// deltaCache keeps delta releases' prepared answers across the
	// snapshot rebuilds of their apps.
	deltaCache update.DeltaCache

	admin *adminState // login limits and upload bookkeeping
	// statsDroppedAt is when stats refused for lack of disk were last
	// logged (Unix seconds).
	statsDroppedAt atomic.Int64
	// health is the per-version device health: failure memory for the
	// decision and the counts auto-halt uses.
	health *healthTracker
	// offers remembers what each device was offered; a device's reports
	// count toward health only for versions it was offered.
	offers *offers.Memory
	// watch is silent-failure detection, adoption and ramps (watch.go).
	watch watchState

	metrics *metrics.Metrics
	// hooks sends webhooks; hookSeq is the last history event handed to
	// it, guarded by writeMu (see emitEvents).
	hooks   *webhook.Dispatcher
	hookSeq uint64

	// links makes download URLs; relinkNow asks relinkLoop to renew the
	// snapshot's expiring ones at once, stopRelink ends it (relink.go).
	links      *downloads.Locator
	relinkNow  chan struct{}
	stopRelink chan struct{}
	relinkDone chan struct{}
}

// New builds a server over an open store and blob store and loads the
// device-facing snapshot.
func New(ctx context.Context, cfg Config, st store.Store, bl blob.Store, tokens *auth.Issuer, log *slog.Logger) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxJSONBytes <= 0 {
		cfg.MaxJSONBytes = 1 << 20
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 12 * time.Hour
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("public URL %q must be an absolute http(s) URL", cfg.PublicURL)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, store: st, blobs: bl, tokens: tokens, log: log, admin: newAdminState(cfg.Now, cfg.BcryptCost, cfg.LoginGuard)}
	s.links = cfg.Downloads
	if s.links == nil {
		if s.links, err = downloads.New(downloads.Config{PublicURL: cfg.PublicURL, Log: log}); err != nil {
			return nil, err
		}
	}
	// Apps are listed, not loaded: their views are built on first use or
	// by WarmUp (lazyload.go), so start-up does not grow with the bundles.
	apps, err := st.ListApps(ctx)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	ids := make([]string, len(apps))
	for i, a := range apps {
		ids[i] = a.ID
	}
	s.snap.Store(update.Pending(ids))
	s.health = newHealthTracker(0, cfg.HealthMemoryBytes)
	hs, err := st.LoadHealth(ctx)
	if err != nil {
		return nil, fmt.Errorf("load device health: %w", err)
	}
	s.health.load(hs)
	s.offers = offers.New(offers.Config{MaxBytes: cfg.OfferMemoryBytes, OnDirty: s.scheduleOfferFlush, Now: cfg.Now()})
	if err := s.loadOffers(ctx); err != nil {
		return nil, fmt.Errorf("load device offers: %w", err)
	}
	if err := s.startWatch(ctx); err != nil {
		return nil, err
	}
	if err := s.initObservability(ctx); err != nil {
		return nil, err
	}
	s.e = s.newRouter()
	s.startRelink()
	s.ready.Store(true)
	return s, nil
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.e }

// internalKey marks a request another part of otad makes to the API in
// process (the dashboard): the request that caused it is logged already,
// so it logs at debug level.
type internalKey struct{}

// InternalHandler is Handler for callers inside otad: the same routes,
// logged at debug level unless they fail on the server's side.
func (s *Server) InternalHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.e.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), internalKey{}, true)))
	})
}

// Mount serves h at prefix and every path below it, beside the API (the
// dashboard at /ui). h does its own authentication. Call it before the
// server serves: the router is not safe to change while it routes.
func (s *Server) Mount(prefix string, h http.Handler) {
	wrapped := echo.WrapHandler(h)
	s.e.Any(prefix, wrapped)
	s.e.Any(prefix+"/*", wrapped)
}

// MountDashboard mounts the dashboard like Mount and names it on the
// landing page (GET /), so a person who opens otad's URL finds it.
func (s *Server) MountDashboard(prefix string, h http.Handler) {
	s.Mount(prefix, h)
	info := landing.Info(s.cfg.PublicURL, s.cfg.Version.Version)
	info.Dashboard = s.cfg.PublicURL + prefix + "/"
	home := landing.Handler(info)
	s.landing.Store(&home)
}

// SetReady marks the server ready or not for /readyz (false while draining).
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// Snapshot returns the current device-facing state. Apps not loaded yet
// are in its Unloaded set (see WarmUp).
func (s *Server) Snapshot() *update.Snapshot { return s.snap.Load() }

// bundleObject names a bundle's bytes for package download. The route's
// key is the content address, so every URL but a presigned one is
// immutable and cacheable forever.
func bundleObject(b *ota.Bundle) downloads.Object {
	ext := ".zip"
	if b.Kind == ota.KindAPK {
		ext = ".apk"
	}
	name := b.SHA256 + ext
	return downloads.Object{Key: b.SHA256, Name: name, Route: "/api/ota/bundle/" + name}
}

// bundleLink is where devices download a bundle now: the snapshot's
// URLFunc.
func (s *Server) bundleLink(b *ota.Bundle) downloads.Link { return s.links.Link(bundleObject(b)) }

// bundleURL is the absolute download URL of a bundle in admin answers: one
// that never expires (otad's route, which redirects to the bucket, or the
// CDN's).
func (s *Server) bundleURL(b *ota.Bundle) string { return s.links.Permanent(bundleObject(b)) }

// fileObject is a stored file form of a delta release as devices download
// it. blob is its key in the blob store, so otad's route is a content
// address, immutable and cacheable forever, like a bundle's.
func fileObject(blob string) downloads.Object {
	return downloads.Object{Key: blob, Name: blob, Route: "/api/ota/file/" + blob}
}

// fileLink is where devices download a stored file form now: otad's
// route, the CDN's URL or a presigned one, like a bundle's. Every file
// URL is made here.
func (s *Server) fileLink(appID, blob string) downloads.Link { return s.links.Link(fileObject(blob)) }

// snapshotOptions are the options every snapshot build of the server uses.
func (s *Server) snapshotOptions() []update.Option {
	return []update.Option{update.WithFileURLs(s.fileLink), update.WithDeltaCache(&s.deltaCache)}
}

// refreshApp reloads one app's device-facing state after a write. It must
// be called after every successful write that changes release state.
func (s *Server) refreshApp(ctx context.Context, appID string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	// Deferred so that a failed reload does not hold back the events of
	// the write that did succeed.
	defer s.emitEvents(ctx)
	st, err := s.store.LoadAppState(ctx, appID)
	if err != nil {
		return fmt.Errorf("refresh snapshot of %s: %w", appID, err)
	}
	s.snap.Store(s.snap.Load().WithApp(appID, st, s.bundleLink, s.snapshotOptions()...))
	return nil
}
