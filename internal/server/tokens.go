package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// CI tokens are otad_ci_<id>_<secret>: id is 8 random bytes and secret 32,
// both lowercase hex (hex has no "_", so the split is unambiguous).
const (
	ciIDBytes     = 8
	ciSecretBytes = 32
	// maxCITokenTTL bounds a token's lifetime: a forgotten token should
	// not work forever.
	maxCITokenTTL = 5 * 366 * 24 * time.Hour
	maxTokenName  = 64
	// ctxCIToken holds the *store.CIToken of a request authenticated by one.
	ctxCIToken = "ota.ci_token"
)

// ciToken is the CI token that authenticated the request, or nil for a
// user login.
func ciToken(c echo.Context) *store.CIToken {
	t, _ := c.Get(ctxCIToken).(*store.CIToken)
	return t
}

func forbidden(format string, args ...any) *apiError {
	return newError(http.StatusForbidden, ota.ErrCodeForbidden, format, args...)
}

// requireUserLogin refuses requests authenticated by a CI token.
func requireUserLogin(c echo.Context, what string) error {
	if t := ciToken(c); t != nil {
		return forbidden("CI token %q cannot %s; log in as a user (otactl login)", t.Name, what)
	}
	return nil
}

// hashSecret is what is stored of a token's secret.
func hashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// parseCIToken splits a CI token into id and secret, checking their form.
func parseCIToken(tok string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(tok, ota.CITokenPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || !isLowerHex(id, 2*ciIDBytes) || !isLowerHex(secret, 2*ciSecretBytes) {
		return "", "", false
	}
	return id, secret, true
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// authCIToken checks a CI token and, when it is valid, records it and its
// actor on the request. Every failure is the same 401; the reason is logged.
func (s *Server) authCIToken(c echo.Context, tok string, log *slog.Logger) error {
	fail := func(reason string, args ...any) error {
		log.Info("authentication failed", append([]any{"reason", reason}, args...)...)
		return unauthorized(c, "invalid, expired or revoked CI token")
	}
	id, secret, ok := parseCIToken(tok)
	if !ok {
		return fail("malformed CI token")
	}
	t, err := s.store.GetToken(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return fail("unknown CI token", "token_id", id)
	}
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(hashSecret(secret), t.SecretHash) != 1 {
		return fail("wrong CI token secret", "token_id", id)
	}
	if !t.RevokedAt.IsZero() {
		return fail("CI token revoked", "token_id", id, "token", t.Name)
	}
	if !s.cfg.Now().Before(t.ExpiresAt) {
		return fail("CI token expired", "token_id", id, "token", t.Name)
	}
	c.Set(ctxCIToken, &t)
	c.Set(ctxUser, "ci:"+t.Name)
	c.Set(ctxExpiresAt, t.ExpiresAt)
	return s.ciAllowed(c, &t)
}

// ciRule says what a CI token may do on a route.
type ciRule int

const (
	ciDeny    ciRule = iota // users and tokens, device overrides, anything new
	ciRead                  // within its app
	ciUpload                // within its app and channel; the form is checked in upload
	ciChannel               // changes one channel: within its app and channel
)

// ciRoutes lists the writes a CI token may make, by method and route. A
// route missing here is denied to CI tokens, unless it is a read, so a
// route added later is safe by default.
var ciRoutes = map[string]ciRule{
	"POST /api/v1/apps/:app/bundles":                               ciUpload,
	"POST /api/ota/admin/ota/upload":                               ciUpload,
	"POST /api/ota/admin/apk/upload":                               ciUpload,
	"POST /api/v1/apps/:app/channels/:channel/rollback":            ciChannel,
	"POST /api/v1/apps/:app/channels/:channel/promote":             ciChannel,
	"POST /api/v1/apps/:app/channels/:channel/rollout":             ciChannel,
	"PATCH /api/v1/apps/:app/channels/:channel":                    ciChannel,
	"DELETE /api/v1/apps/:app/channels/:channel/releases/:version": ciChannel,
	"DELETE /api/ota/admin/ota/:channel/:version":                  ciChannel,
	"POST /api/v1/apps/:app/explain":                               ciRead,
	// Delta files are content, not a release: within the token's app.
	"POST /api/v1/apps/:app/files/missing": ciRead,
	"PUT /api/v1/apps/:app/files/:sha256":  ciRead,
}

// userOnlyPrefixes are route prefixes a CI token may not even read:
// tokens, and webhooks (their URLs and secrets).
var userOnlyPrefixes = []string{"/api/v1/tokens", "/api/v1/webhooks"}

func userOnly(path string) bool {
	for _, p := range userOnlyPrefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// ciAllowed enforces a CI token's scope on the route of the request.
func (s *Server) ciAllowed(c echo.Context, t *store.CIToken) error {
	method, path := c.Request().Method, c.Path()
	rule, ok := ciRoutes[method+" "+path]
	if !ok && (method == http.MethodGet || method == http.MethodHead) && !userOnly(path) {
		rule, ok = ciRead, true
	}
	if !ok || rule == ciDeny {
		return forbidden("CI token %q may upload, read and change its own channels, not %s %s; use a user login", t.Name, method, path)
	}
	app := c.Param("app")
	if app == "" && path == "/api/ota/admin/ota/:channel/:version" {
		app = c.QueryParam("app_id")
		if app == "" {
			app = s.cfg.DefaultApp
		}
	}
	if app != "" && t.AppID != "" && app != t.AppID {
		return forbidden("CI token %q is limited to app %s, not %s", t.Name, t.AppID, clip(app))
	}
	if rule == ciChannel {
		return checkCIScope(t, app, c.Param("channel"))
	}
	return nil
}

// requireAppWide refuses a change that affects every channel of app (the
// default channel, say) to a CI token limited to one channel: such a token
// may change what its channel serves, not what the app's other devices get.
func requireAppWide(c echo.Context, app, what string) error {
	t := ciToken(c)
	if t == nil || t.Channel == "" {
		return nil
	}
	return forbidden("CI token %q is limited to channel %s and cannot %s of %s, which affects every channel; use a token without a channel limit or a user login",
		t.Name, t.Channel, what, app)
}

// checkCIScope refuses a change to app/channel outside the token's scope.
// A nil token (a user login) may change anything.
func checkCIScope(t *store.CIToken, app, channel string) error {
	if t == nil {
		return nil
	}
	if t.AppID != "" && app != t.AppID {
		return forbidden("CI token %q is limited to app %s and cannot deploy to %s", t.Name, t.AppID, clip(app))
	}
	if t.Channel != "" && channel != t.Channel {
		return forbidden("CI token %q is limited to channel %s and cannot deploy to %s", t.Name, t.Channel, clip(channel))
	}
	return nil
}

func tokenInfo(t store.CIToken) ota.TokenInfo {
	info := ota.TokenInfo{
		ID: t.ID, Name: t.Name, AppID: t.AppID, Channel: t.Channel, Protected: t.Protected,
		CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
	}
	if !t.RevokedAt.IsZero() {
		r := t.RevokedAt
		info.RevokedAt = &r
	}
	return info
}

func checkTokenName(name string) error {
	if name == "" || len(name) > maxTokenName {
		return badRequest("token name must be 1 to %d characters, e.g. github-deploy", maxTokenName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return badRequest("token name %q may hold only letters, digits, '-', '_' and '.'", clip(name))
		}
	}
	return nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// handleCreateToken is POST /api/v1/tokens.
func (s *Server) handleCreateToken(c echo.Context) error {
	if err := requireUserLogin(c, "create tokens"); err != nil {
		return err
	}
	var req ota.TokenCreateRequest
	if err := s.decodeJSON(c, &req, 0, false); err != nil {
		return err
	}
	if err := checkTokenName(req.Name); err != nil {
		return err
	}
	ttl := time.Duration(req.TTLSeconds) * time.Second
	if req.TTLSeconds <= 0 || ttl > maxCITokenTTL || req.TTLSeconds > int64(maxCITokenTTL/time.Second) {
		return badRequest("ttl_seconds must be between 1 and %d (five years); tokens always expire", int64(maxCITokenTTL/time.Second))
	}
	if req.AppID != "" {
		if err := checkApp(req.AppID); err != nil {
			return err
		}
	}
	if req.Channel != "" {
		if err := checkChannel(req.Channel); err != nil {
			return err
		}
	}
	id, err := randomHex(ciIDBytes)
	if err != nil {
		return err
	}
	secret, err := randomHex(ciSecretBytes)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC().Round(0)
	t := store.CIToken{
		ID: id, Name: req.Name, SecretHash: hashSecret(secret), AppID: req.AppID, Channel: req.Channel,
		Protected: req.Protected, CreatedBy: actor(c), CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	if err := s.store.CreateToken(c.Request().Context(), t); err != nil {
		return fmt.Errorf("store new token: %w", err)
	}
	s.log.Info("CI token created", "token_id", id, "token", t.Name, "app", t.AppID, "channel", t.Channel, "protected", t.Protected,
		"expires_at", t.ExpiresAt, "user", t.CreatedBy)
	return c.JSON(http.StatusCreated, ota.TokenCreateResponse{
		Token:     ota.CITokenPrefix + id + "_" + secret,
		TokenInfo: tokenInfo(t),
	})
}

// handleListTokens is GET /api/v1/tokens.
func (s *Server) handleListTokens(c echo.Context) error {
	if err := requireUserLogin(c, "list tokens"); err != nil {
		return err
	}
	ts, err := s.store.ListTokens(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]ota.TokenInfo, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenInfo(t))
	}
	return c.JSON(http.StatusOK, out)
}

// handleRevokeToken is DELETE /api/v1/tokens/:id.
func (s *Server) handleRevokeToken(c echo.Context) error {
	if err := requireUserLogin(c, "revoke tokens"); err != nil {
		return err
	}
	id := c.Param("id")
	if !isLowerHex(id, 2*ciIDBytes) {
		return newError(http.StatusNotFound, ota.ErrCodeNotFound, "no token with id %q; list them with: otactl token list", clip(id))
	}
	t, err := s.store.RevokeToken(c.Request().Context(), id, s.cfg.Now())
	if errors.Is(err, store.ErrNotFound) {
		return newError(http.StatusNotFound, ota.ErrCodeNotFound, "no token with id %q; list them with: otactl token list", id)
	}
	if err != nil {
		return err
	}
	s.log.Info("CI token revoked", "token_id", id, "token", t.Name, "user", actor(c))
	return c.JSON(http.StatusOK, tokenInfo(t))
}
