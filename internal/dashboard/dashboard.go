// Package dashboard is otad's dashboard in the browser, served at /ui: what
// every channel serves, how each release is doing, the event log, and the
// actions of a release manager (roll back, promote, pause, resume and
// complete a rollout), each behind a confirmation.
//
// It is an API client that runs inside otad: the browser's session holds a
// login token (the kind otactl login gets), and every read and action is a
// request to the admin API's own handler, in-process, with that token. So
// the dashboard has the API's users, login limits, validation, channel
// rules and history events by construction, and needs nothing of the
// server package but its http.Handler. The pages are html/template,
// rendered on the server, with charts as inline SVG; they read without
// JavaScript, and a vendored htmx (assets/static) only refreshes the
// health panel in place. Assets are embedded; the Content-Security-Policy
// allows scripts, styles and requests from otad itself only.
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// BundleReader reads one bundle record. The store implements it; the
// dashboard needs the native ranges of a channel's recent releases, which
// the API only lists all at once.
type BundleReader interface {
	GetBundle(ctx context.Context, appID, kind, version string) (ota.Bundle, error)
}

// Config is what the dashboard needs of otad.
type Config struct {
	// API is otad's HTTP handler: the dashboard calls the admin API in it.
	API http.Handler
	// Bundles reads bundle records for the native-version table.
	Bundles BundleReader
	// Secret keys CSRF tokens and signed cookies; at least 32 bytes. Give
	// every replica the same (otad derives it from the token signing key).
	Secret []byte
	// PublicURL is otad's public URL: an https one makes cookies Secure and
	// is a trusted origin for state-changing requests.
	PublicURL string
	// TrustProxy believes X-Forwarded-Proto: https (set with otad's
	// --trust-proxy, only behind a proxy that overwrites it).
	TrustProxy bool
	// Version is shown in the page footer.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
	// Refresh is how often an open channel page reloads its health panel
	// (0: 15 s).
	Refresh time.Duration
	// HealthCache is how long one health summary answers every page that
	// asks for the same channel and window (0: none). A summary reads the
	// stored stats of its window, up to 100,000 events per app, so a few
	// open pages would otherwise each cost that every refresh.
	HealthCache time.Duration
}

// Dashboard serves /ui.
type Dashboard struct {
	cfg     Config
	log     *slog.Logger
	h       http.Handler
	pages   *pages
	revoked revocations
	health  healthCache
}

// Prefix is where otad mounts the dashboard.
const Prefix = "/ui"

// New builds the dashboard.
func New(cfg Config) (*Dashboard, error) {
	if cfg.API == nil {
		return nil, errors.New("dashboard: no API handler")
	}
	if len(cfg.Secret) < 32 {
		return nil, fmt.Errorf("dashboard: secret is %d bytes; at least 32 are needed", len(cfg.Secret))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 15 * time.Second
	}
	d := &Dashboard{cfg: cfg, log: cfg.Log}
	p, err := loadPages(d)
	if err != nil {
		return nil, err
	}
	d.pages = p

	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /ui/static/{name}", d.serveStatic)
	mux.HandleFunc("GET /ui/login", d.handleLoginForm)
	mux.HandleFunc("POST /ui/login", d.handleLogin)
	mux.Handle("POST /ui/logout", d.authed(d.handleLogout))
	mux.Handle("GET /ui/{$}", d.authed(d.handleOverview))
	mux.Handle("GET /ui/apps/{app}", d.authed(d.handleApp))
	mux.Handle("GET /ui/apps/{app}/history", d.authed(d.handleHistory))
	mux.Handle("GET /ui/apps/{app}/device", d.authed(d.handleDevice))
	mux.Handle("GET /ui/apps/{app}/channels/{channel}", d.authed(d.handleChannel))
	mux.Handle("GET /ui/apps/{app}/channels/{channel}/health", d.authed(d.handleHealthPanel))
	mux.Handle("GET /ui/apps/{app}/channels/{channel}/{action}", d.authed(d.handleConfirm))
	mux.Handle("POST /ui/apps/{app}/channels/{channel}/{action}", d.authed(d.handleAction))
	mux.Handle("GET /ui/webhooks", d.authed(d.handleWebhooks))
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		d.renderError(w, r, nil, &httpError{status: http.StatusNotFound, msg: "There is no such page."})
	})

	// Cross-origin state-changing requests are refused before anything
	// else runs (Sec-Fetch-Site, or Origin against Host and the public
	// URL); the CSRF token stays the check that does not rely on browsers.
	cop := http.NewCrossOriginProtection()
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Scheme != "" && u.Host != "" {
		_ = cop.AddTrustedOrigin(u.Scheme + "://" + u.Host)
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.log.Warn("dashboard refused a cross-origin request", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		d.renderError(w, r, nil, &httpError{status: http.StatusForbidden, msg: "This form was sent from another site, so it was refused."})
	}))
	d.h = cop.Handler(mux)
	return d, nil
}

// csp allows nothing but otad's own scripts, styles, images and requests;
// no inline script or style (the charts are SVG drawn with attributes and
// classes), no frames, forms only to otad.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP serves every /ui request with the security headers.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
	if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
		h.Set("Cache-Control", "no-store")
	}
	d.h.ServeHTTP(w, r)
}

// httpError is a page-level failure: its status and what the page says.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// authedHandler serves a request of a logged-in user.
type authedHandler func(w http.ResponseWriter, r *http.Request, s *session) error

// authed admits requests with a valid session, and state-changing ones
// only with the session's CSRF token. Without a session the browser is
// sent to the login form, which brings it back here.
func (d *Dashboard) authed(h authedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := d.session(w, r)
		if errors.Is(err, errNoSession) {
			d.toLogin(w, r)
			return
		}
		if err != nil {
			d.renderError(w, r, nil, err)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if !d.checkCSRF(r, s) {
				d.log.Warn("dashboard refused a form without its CSRF token", "path", r.URL.Path, "user", s.user,
					"request_id", w.Header().Get("X-Request-Id"))
				d.renderError(w, r, s, &httpError{status: http.StatusForbidden,
					msg: "This form is out of date or did not come from this dashboard. Reload the page and try again."})
				return
			}
		}
		if err := h(w, r, s); err != nil {
			d.renderError(w, r, s, err)
		}
	})
}

// toLogin sends a browser without a session to the login form. An htmx
// request (a panel refreshing itself) gets told to load the form instead
// of having it swapped into the page.
func (d *Dashboard) toLogin(w http.ResponseWriter, r *http.Request) {
	d.setCookie(w, r, cookieSession, "", -1)
	next := r.URL.Path
	if r.Method == http.MethodGet && r.URL.RawQuery != "" {
		next += "?" + r.URL.RawQuery
	}
	to := "/ui/login?next=" + url.QueryEscape(safeNext(next))
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
