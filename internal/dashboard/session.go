package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// Cookie names. Over HTTPS they get the __Host- prefix, which browsers
// accept only from a secure origin, for Path=/ and without Domain, so no
// other host (a sibling subdomain, a network attacker on plain HTTP) can
// plant one.
const (
	cookieSession = "otad_session"
	cookieLogin   = "otad_login" // the login form's CSRF secret
	cookieFlash   = "otad_flash" // a one-time message after an action
	hostPrefix    = "__Host-"
)

// Bounds of what the dashboard reads from a browser.
const (
	maxFormBytes  = 64 << 10
	maxCookieLen  = 4096
	flashLifetime = time.Minute
	loginLifetime = time.Hour
	maxRevoked    = 100000
)

// session is an authenticated browser: the login token it holds (the
// same kind of token otactl login gets) and who it belongs to.
type session struct {
	token string
	user  string
	exp   time.Time
	csrf  string
}

// secure reports whether the browser reaches otad over HTTPS: a TLS
// connection, a proxy that says so (only with --trust-proxy), or an
// https public URL.
func (d *Dashboard) secure(r *http.Request) bool {
	if r.TLS != nil || strings.HasPrefix(d.cfg.PublicURL, "https://") {
		return true
	}
	return d.cfg.TrustProxy && strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
}

func (d *Dashboard) cookieName(r *http.Request, base string) string {
	if d.secure(r) {
		return hostPrefix + base
	}
	return base
}

// setCookie sets an HttpOnly, SameSite=Strict cookie, Secure over HTTPS;
// maxAge < 0 deletes it.
func (d *Dashboard) setCookie(w http.ResponseWriter, r *http.Request, base, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name:     d.cookieName(r, base),
		Value:    value,
		Path:     "/ui",
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   d.secure(r),
		MaxAge:   int(maxAge / time.Second),
	}
	if c.Secure {
		c.Path = "/" // required by the __Host- prefix
	}
	if maxAge < 0 {
		c.MaxAge, c.Value = -1, ""
	} else if c.MaxAge == 0 {
		c.MaxAge = 1
	}
	http.SetCookie(w, c)
}

// cookie returns the value of the cookie base, "" when missing or too long.
func (d *Dashboard) cookie(r *http.Request, base string) string {
	c, err := r.Cookie(d.cookieName(r, base))
	if err != nil || len(c.Value) > maxCookieLen {
		return ""
	}
	return c.Value
}

// mac is the dashboard's keyed hash of the parts, base64url: CSRF tokens
// and signed cookies. The key is derived from otad's signing key, so every
// replica sharing that key agrees.
func (d *Dashboard) mac(parts ...string) string {
	h := hmac.New(sha256.New, d.cfg.Secret)
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func equal(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

// csrfFor is the CSRF token of a session: bound to its login token, so it
// changes with every login and dies with the session.
func (d *Dashboard) csrfFor(token string) string { return d.mac("csrf", token) }

// errNoSession means the request carries no valid session; the reason is
// logged, the browser is sent to the login form.
var errNoSession = errors.New("no session")

// session authenticates r by its session cookie: the token must not be a
// CI token, not logged out, and the admin API must accept it as a user's
// login (signature, expiry, user still there, password unchanged since).
func (d *Dashboard) session(w http.ResponseWriter, r *http.Request) (*session, error) {
	tok := d.cookie(r, cookieSession)
	if tok == "" {
		return nil, errNoSession
	}
	log := d.log.With("request_id", w.Header().Get("X-Request-Id"))
	if strings.HasPrefix(tok, ota.CITokenPrefix) {
		log.Info("dashboard session refused", "reason", "a CI token is not a user login")
		return nil, errNoSession
	}
	if d.revoked.has(tok, d.cfg.Now()) {
		log.Info("dashboard session refused", "reason", "logged out")
		return nil, errNoSession
	}
	me, err := d.apiClient(r, w, tok).Me(r.Context())
	if st := apiStatus(err); st == http.StatusUnauthorized || st == http.StatusForbidden {
		return nil, errNoSession // the API logged why
	}
	if err != nil {
		return nil, err
	}
	user, _ := me["username"].(string)
	if user == "" || strings.HasPrefix(user, "ci:") {
		log.Info("dashboard session refused", "reason", "not a user login")
		return nil, errNoSession
	}
	s := &session{token: tok, user: user, csrf: d.csrfFor(tok)}
	if v, ok := me["token_expires_at"].(string); ok {
		s.exp, _ = time.Parse(time.RFC3339, v)
	}
	return s, nil
}

// checkCSRF verifies the csrf field of a form posted by s.
func (d *Dashboard) checkCSRF(r *http.Request, s *session) bool {
	got := r.PostFormValue("csrf")
	return got != "" && equal(got, s.csrf)
}

// revocations are the login tokens of sessions that logged out, until
// they expire. They live in this process: another otad behind the same
// signing key still accepts a logged-out token until it expires (the
// browser has deleted it; see docs/security.md).
type revocations struct {
	mu sync.Mutex
	m  map[[32]byte]time.Time
}

func (v *revocations) add(token string, exp, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[[32]byte]time.Time{}
	}
	if len(v.m) >= maxRevoked {
		for k, e := range v.m {
			if !e.After(now) {
				delete(v.m, k)
			}
		}
	}
	if len(v.m) >= maxRevoked {
		// Only logged-in users get here; drop the one expiring first.
		var first [32]byte
		var at time.Time
		for k, e := range v.m {
			if at.IsZero() || e.Before(at) {
				first, at = k, e
			}
		}
		delete(v.m, first)
	}
	if exp.IsZero() {
		exp = now.Add(24 * time.Hour)
	}
	v.m[sha256.Sum256([]byte(token))] = exp
}

func (v *revocations) has(token string, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.m[sha256.Sum256([]byte(token))]
	return ok && e.After(now)
}

// loginCSRF returns the login form's CSRF field for the browser's login
// cookie, creating the cookie when missing.
func (d *Dashboard) loginCSRF(w http.ResponseWriter, r *http.Request) string {
	secret := d.cookie(r, cookieLogin)
	if len(secret) < 26 { // rand.Text: 26 characters, 128 bits
		secret = rand.Text()
		d.setCookie(w, r, cookieLogin, secret, loginLifetime)
	}
	return d.mac("login", secret)
}

func (d *Dashboard) checkLoginCSRF(r *http.Request) bool {
	secret := d.cookie(r, cookieLogin)
	got := r.PostFormValue("csrf")
	return len(secret) >= 26 && got != "" && equal(got, d.mac("login", secret))
}

// setFlash leaves a message for the next page the browser shows.
func (d *Dashboard) setFlash(w http.ResponseWriter, r *http.Request, msg string) {
	v := base64.RawURLEncoding.EncodeToString([]byte(msg))
	d.setCookie(w, r, cookieFlash, v+"."+d.mac("flash", v), flashLifetime)
}

// takeFlash returns the message left by setFlash, once.
func (d *Dashboard) takeFlash(w http.ResponseWriter, r *http.Request) string {
	c := d.cookie(r, cookieFlash)
	if c == "" {
		return ""
	}
	d.setCookie(w, r, cookieFlash, "", -1)
	v, sig, ok := strings.Cut(c, ".")
	if !ok || !equal(sig, d.mac("flash", v)) {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// safeNext is where to go after logging in: a dashboard path, never
// another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "/ui//") || len(next) > 512 {
		return "/ui/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "/ui/" // escaped in a URL it would be fine; raw it is a trick
		}
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" {
		return "/ui/"
	}
	return next
}
