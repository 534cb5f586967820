package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/auth"
	"github.com/otaship/ota/internal/ratelimit"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// maxLoginBody bounds a login request. The attempts allowed are
// ratelimit.Login's (per address, per user and address, per user).
const maxLoginBody = 4 << 10

// Keys of values requireAuth stores in the echo context.
const (
	ctxUser      = "ota.user"
	ctxExpiresAt = "ota.token_expires_at"
)

// adminState is what the admin handlers keep between requests.
type adminState struct {
	login ratelimit.LoginGuard
	// logKey keys the hashes by which logs name user names that may not
	// exist (a password typed into the name field must not reach a log,
	// nor a hash of it that could be guessed offline). It is random per
	// process, so the same name matches within one run's logs only.
	logKey []byte
	// unknownUser makes a login for a missing user cost a bcrypt check.
	unknownUser *auth.UnknownUser
	// blobMu orders "delete the bytes of a rejected upload" (write lock)
	// against "publish a bundle whose bytes were stored" (read lock), so a
	// rejected upload never deletes bytes a concurrent accepted upload of
	// the same content just published.
	blobMu sync.RWMutex
	// uploads counts uploads in flight (guarded by blobMu). A rejected
	// upload deletes its bytes only when it is the only one: another may
	// have stored the same bytes and not published them yet. Bytes left
	// behind are collected by otad's unreferenced-blob collection.
	uploads int
}

func newAdminState(now func() time.Time, bcryptCost int, login ratelimit.LoginGuard) *adminState {
	if login == nil {
		login = ratelimit.NewLogin(now)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	return &adminState{unknownUser: auth.NewUnknownUser(bcryptCost), login: login, logKey: key}
}

// userHash names a user name in the log without revealing it.
func (a *adminState) userHash(name string) string {
	m := hmac.New(sha256.New, a.logKey)
	m.Write([]byte(name))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// unauthorized is the one answer to every authentication failure; the
// reason goes to the log only.
func unauthorized(c echo.Context, msg string) error {
	c.Response().Header().Set("WWW-Authenticate", `Bearer realm="otad"`)
	return newError(http.StatusUnauthorized, ota.ErrCodeUnauthorized, "%s; run: otactl login", msg)
}

// setAdminHeaders marks admin answers as private, not sniffable and not
// frameable.
func setAdminHeaders(c echo.Context) {
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
}

// requireAuth admits requests with a valid bearer token of an existing
// user (the same user: its id matches) whose password has not changed
// since the token was issued, or with
// a valid CI token whose scope covers the route (see ciAllowed).
func (s *Server) requireAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		setAdminHeaders(c)
		log := s.log.With("method", c.Request().Method, "path", c.Path(),
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		h := c.Request().Header.Get("Authorization")
		if h == "" {
			return unauthorized(c, "missing bearer token")
		}
		scheme, tok, ok := strings.Cut(h, " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			log.Info("authentication failed", "reason", "authorization header is not a bearer token")
			return unauthorized(c, "authorization must be a bearer token")
		}
		// CI tokens are told from login JWTs by their prefix.
		if strings.HasPrefix(tok, ota.CITokenPrefix) {
			if err := s.authCIToken(c, tok, log); err != nil {
				return err
			}
			return next(c)
		}
		claims, err := s.tokens.Verify(tok)
		if err != nil {
			// err describes the claim that failed, never the token itself.
			log.Info("authentication failed", "reason", err.Error())
			return unauthorized(c, "invalid or expired token")
		}
		u, err := s.store.GetUser(c.Request().Context(), claims.Subject)
		if errors.Is(err, store.ErrNotFound) {
			log.Info("authentication failed", "reason", "user no longer exists", "user", claims.Subject)
			return unauthorized(c, "invalid or expired token")
		}
		if err != nil {
			return err
		}
		if claims.UserID != u.ID {
			// A user removed and created again has a new id; a token
			// without one is from before ids existed.
			log.Info("authentication failed", "reason", "token of another user of that name, or from before user ids", "user", u.Name)
			return unauthorized(c, "invalid or expired token")
		}
		if claims.Generation != u.TokenGeneration {
			log.Info("authentication failed", "reason", "token issued before the last password change", "user", u.Name)
			return unauthorized(c, "invalid or expired token")
		}
		c.Set(ctxUser, u.Name)
		c.Set(ctxExpiresAt, claims.ExpiresAt)
		return next(c)
	}
}

// actor is the authenticated user of a request, for history events.
func actor(c echo.Context) string {
	name, _ := c.Get(ctxUser).(string)
	return name
}

// clientKey appends the key rate limits count the request's client by to
// dst: its address, an IPv6 one cut to its /64 (Config.IPv6Prefix). See
// ratelimit.ClientKey.
func (s *Server) clientKey(dst []byte, c echo.Context) []byte {
	return ratelimit.ClientKey(dst, s.clientIP(c), s.cfg.IPv6Prefix)
}

// clientIP is the client's address, for logs and rate limits. Headers such as
// X-Forwarded-For are set by the client unless a proxy overwrites them, so
// they count only when the operator says a proxy does (TrustProxy).
func (s *Server) clientIP(c echo.Context) string {
	if s.cfg.TrustProxy {
		return c.RealIP()
	}
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return c.Request().RemoteAddr
	}
	return host
}

func tooManyRequests(retry time.Duration) error {
	e := newError(http.StatusTooManyRequests, ota.ErrCodeTooManyRequests, "too many login attempts; wait %s and try again", retry.Round(time.Second))
	e.RetryAfter = int(math.Ceil(retry.Seconds()))
	if e.RetryAfter < 1 {
		e.RetryAfter = 1
	}
	return e
}

// handleLogin exchanges a user name and password for a bearer token. A
// user name that may not exist (a password typed into the name field) is
// logged only as a keyed hash.
func (s *Server) handleLogin(c echo.Context) error {
	setAdminHeaders(c)
	ip := s.clientIP(c)
	var kb [40]byte
	addr := string(s.clientKey(kb[:0], c))
	if ok, retry := s.admin.login.AllowAddress(addr); !ok {
		s.reqLog(c).Warn("login rate limited", "by", "address", "address", ip)
		return tooManyRequests(retry)
	}
	var req ota.LoginRequest
	if err := s.decodeJSON(c, &req, maxLoginBody, false); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return badRequest("username and password are required")
	}
	if len(req.Username) > 128 || len(req.Password) > 1024 {
		return badRequest("username or password is too long")
	}
	if ok, retry, by := s.admin.login.AllowUser(req.Username, addr); !ok {
		s.reqLog(c).Warn("login rate limited", "by", by, "user_hash", s.admin.userHash(req.Username), "address", ip)
		return tooManyRequests(retry)
	}
	const badCreds = "wrong user name or password"
	u, err := s.store.GetUser(c.Request().Context(), req.Username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Spend the same time as a wrong password, so answers do not tell
		// which user names exist.
		s.admin.unknownUser.Check(req.Password)
		s.admin.login.Done(req.Username, addr, false)
		s.reqLog(c).Info("login failed", "reason", "unknown user", "user_hash", s.admin.userHash(req.Username), "address", ip)
		return newError(http.StatusUnauthorized, ota.ErrCodeUnauthorized, badCreds)
	case err != nil:
		return err
	}
	if !auth.CheckPassword(u.PasswordHash, req.Password) {
		s.admin.login.Done(req.Username, addr, false)
		s.reqLog(c).Info("login failed", "reason", "wrong password", "user", u.Name, "address", ip)
		return newError(http.StatusUnauthorized, ota.ErrCodeUnauthorized, badCreds)
	}
	s.admin.login.Done(req.Username, addr, true)
	tok, exp, err := s.tokens.Issue(u.Name, u.ID, u.TokenGeneration)
	if err != nil {
		return err
	}
	s.reqLog(c).Info("login", "user", u.Name, "address", ip)
	return c.JSON(http.StatusOK, ota.LoginResponse{Token: tok, ExpiresAt: exp})
}

// handleMe tells the caller who the token belongs to.
func (s *Server) handleMe(c echo.Context) error {
	exp, _ := c.Get(ctxExpiresAt).(time.Time)
	return c.JSON(http.StatusOK, map[string]any{
		"username":         actor(c),
		"token_expires_at": exp,
	})
}
