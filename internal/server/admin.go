package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Page sizes of the list endpoints.
const (
	defaultHistoryLimit = 50
	maxHistoryLimit     = 500
	defaultStatsLimit   = 100
	maxStatsLimit       = 1000
)

// decodeJSON reads a bounded JSON body into v. Unknown fields are refused,
// so a misspelt policy field fails instead of silently changing nothing.
// limit <= 0 means Config.MaxJSONBytes; allowEmpty accepts a missing body.
func (s *Server) decodeJSON(c echo.Context, v any, limit int64, allowEmpty bool) error {
	if limit <= 0 {
		limit = s.cfg.MaxJSONBytes
	}
	body := http.MaxBytesReader(c.Response(), c.Request().Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) && allowEmpty {
			return nil
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newError(http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge, "JSON body is larger than %d bytes", mbe.Limit)
		}
		if errors.Is(err, io.EOF) {
			return newError(http.StatusBadRequest, ota.ErrCodeInvalidJSON, "request body is empty; send a JSON object")
		}
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidJSON, "request body is not valid JSON for this endpoint: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidJSON, "request body has data after the JSON object")
	}
	return nil
}

// appParam validates the :app path parameter and checks the app exists.
func (s *Server) appParam(c echo.Context) (string, error) {
	app := c.Param("app")
	if err := checkApp(app); err != nil {
		return "", err
	}
	return app, s.requireApp(c.Request().Context(), app)
}

func (s *Server) requireApp(ctx context.Context, app string) error {
	_, err := s.store.GetApp(ctx, app)
	if errors.Is(err, store.ErrNotFound) {
		return appNotFound(app)
	}
	return err
}

func appNotFound(app string) error {
	return newError(http.StatusNotFound, ota.ErrCodeAppNotFound,
		"app %s does not exist; it is created by its first upload (otactl deploy)", app)
}

// channelParam validates the :channel path parameter and loads it.
func (s *Server) channelParam(c echo.Context, app string) (ota.Channel, error) {
	name := c.Param("channel")
	if err := checkChannel(name); err != nil {
		return ota.Channel{}, err
	}
	return s.requireChannel(c.Request().Context(), app, name)
}

func (s *Server) requireChannel(ctx context.Context, app, name string) (ota.Channel, error) {
	ch, err := s.store.GetChannel(ctx, app, name)
	if errors.Is(err, store.ErrNotFound) {
		return ch, newError(http.StatusNotFound, ota.ErrCodeChannelNotFound,
			"channel %s of app %s does not exist; list channels with otactl channels", name, app)
	}
	return ch, err
}

// bundleNotFound turns a store's ErrNotFound during a channel operation
// into an answer naming what was missing.
func bundleNotFound(err error, format string, args ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return newError(http.StatusNotFound, ota.ErrCodeBundleNotFound, format, args...)
	}
	return err
}

func (s *Server) withURL(ch ota.Channel) ota.Channel {
	if ch.ActiveBundle != nil {
		b := *ch.ActiveBundle
		b.URL = s.bundleURL(&b)
		ch.ActiveBundle = &b
	}
	if ch.Releases == nil {
		ch.Releases = []ota.Release{}
	}
	return ch
}

// handleListApps lists the apps; a CI token limited to one app sees that
// one only.
func (s *Server) handleListApps(c echo.Context) error {
	apps, err := s.store.ListApps(c.Request().Context())
	if err != nil {
		return err
	}
	if t := ciToken(c); t != nil && t.AppID != "" {
		apps = slices.DeleteFunc(apps, func(a ota.App) bool { return a.ID != t.AppID })
	}
	if apps == nil {
		apps = []ota.App{}
	}
	return c.JSON(http.StatusOK, apps)
}

func (s *Server) handleGetApp(c echo.Context) error {
	app := c.Param("app")
	if err := checkApp(app); err != nil {
		return err
	}
	a, err := s.store.GetApp(c.Request().Context(), app)
	if errors.Is(err, store.ErrNotFound) {
		return appNotFound(app)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

func (s *Server) handleListChannels(c echo.Context) error {
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	chs, err := s.store.ListChannels(c.Request().Context(), app)
	if err != nil {
		return err
	}
	out := make([]ota.Channel, 0, len(chs))
	for _, ch := range chs {
		out = append(out, s.withURL(ch))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) handleGetChannel(c echo.Context) error {
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	ch, err := s.channelParam(c, app)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.withURL(ch))
}

func (s *Server) handlePatchChannel(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	ch, err := s.channelParam(c, app)
	if err != nil {
		return err
	}
	var p ota.ChannelPolicyPatch
	if err := s.decodeJSON(c, &p, 0, false); err != nil {
		return err
	}
	// Which channel is the default decides what every device without a
	// channel of its own gets: an app-wide change.
	if p.Default != nil {
		if err := requireAppWide(c, app, "change the default channel"); err != nil {
			return err
		}
	}
	if p == (ota.ChannelPolicyPatch{}) {
		return badRequest("the patch changes nothing; send at least one policy field, e.g. {\"ios\":false}")
	}
	// Unprotecting a channel, or loosening a protected one's rules, is a
	// change only those who may deploy there make.
	if p.Protected != nil && ciToken(c) != nil && !ciToken(c).Protected {
		return forbidden("CI token %q cannot change whether channel %s is protected; use a user login or a token made with --protected", ciToken(c).Name, ch.Name)
	}
	if err := requireProtected(c, &ch, "a policy change"); err != nil {
		return err
	}
	if p.DisableAutoUpdate != nil {
		switch *p.DisableAutoUpdate {
		case ota.DisableNone, ota.DisableMajor, ota.DisableMinor, ota.DisablePatch, ota.DisableVersionNumber:
		default:
			return badRequest("disable_auto_update %q is unknown; use none, major, minor, patch or version_number", clip(*p.DisableAutoUpdate))
		}
	}
	updated, err := s.store.UpdateChannel(ctx, app, ch.Name, p, actor(c), s.cfg.Now())
	if err != nil {
		return err
	}
	if err := s.refreshApp(ctx, app); err != nil {
		return err
	}
	s.reqLog(c).Info("channel policy changed", "app", app, "channel", ch.Name, "user", actor(c))
	// A lower threshold may already be crossed.
	if halted, err := s.recheckHalt(ctx, app, ch.Name); err != nil {
		return err
	} else if halted {
		if updated, err = s.store.GetChannel(ctx, app, ch.Name); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, s.withURL(updated))
}

func (s *Server) handleRollback(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	ch, err := s.channelParam(c, app)
	if err != nil {
		return err
	}
	var req ota.RollbackRequest
	if err := s.decodeJSON(c, &req, 0, true); err != nil {
		return err
	}
	if req.To != "" {
		if err := checkVersionRef(req.To, ch.Kind != ota.KindAPK); err != nil {
			return err
		}
	}
	change, err := s.store.Rollback(ctx, app, ch.Name, req.To, actor(c), s.cfg.Now())
	if errors.Is(err, store.ErrNoPrevious) {
		return newError(http.StatusConflict, ota.ErrCodeNothingToRoll,
			"channel %s has no release before %q to roll back to; name a version with to, or delete the release", ch.Name, ch.Active)
	}
	if err != nil {
		return bundleNotFound(err, "app %s has no %s bundle %s to roll back to", app, ch.Kind, req.To)
	}
	if err := s.refreshApp(ctx, app); err != nil {
		return err
	}
	s.reqLog(c).Info("channel rolled back", "app", app, "channel", ch.Name, "from", change.From, "to", change.To, "user", actor(c))
	return c.JSON(http.StatusOK, change)
}

func (s *Server) handlePromote(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	to := c.Param("channel")
	if err := checkChannel(to); err != nil {
		return err
	}
	var req ota.PromoteRequest
	if err := s.decodeJSON(c, &req, 0, false); err != nil {
		return err
	}
	// The source channel is needed even with a version: it says which kind
	// of bundle is meant.
	if req.From == "" {
		return badRequest("name the source channel in from, e.g. {\"from\":\"beta\"}")
	}
	if err := checkChannel(req.From); err != nil {
		return err
	}
	if req.From == to {
		return badRequest("cannot promote channel %s onto itself", to)
	}
	if _, err := s.requireChannel(ctx, app, req.From); err != nil {
		return err
	}
	if req.Version != "" {
		if err := checkVersionRef(req.Version, false); err != nil {
			return err
		}
	}
	if err := s.requireProtectedByName(ctx, c, app, to, "a promotion"); err != nil {
		return err
	}
	change, err := s.store.Promote(ctx, app, req.Version, req.From, to, actor(c), s.cfg.Now())
	if err != nil {
		return bundleNotFound(err, "app %s has no bundle %s in channel %s's kind to promote", app, req.Version, req.From)
	}
	if err := s.refreshApp(ctx, app); err != nil {
		return err
	}
	s.reqLog(c).Info("release promoted", "app", app, "channel", to, "from", change.From, "to", change.To, "user", actor(c))
	return c.JSON(http.StatusOK, change)
}

func (s *Server) handleDeleteRelease(c echo.Context) error {
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	return s.deleteRelease(c, app, c.Param("channel"), c.Param("version"))
}

// handleLegacyDelete is the old worker's DELETE /api/ota/admin/ota/:channel/:version,
// for the default app unless ?app_id= names one.
func (s *Server) handleLegacyDelete(c echo.Context) error {
	app := c.QueryParam("app_id")
	if app == "" {
		app = s.cfg.DefaultApp
	}
	if app == "" {
		return badRequest("no app named: pass ?app_id=, or set OTAD_DEFAULT_APP on the server")
	}
	if err := checkApp(app); err != nil {
		return err
	}
	if err := s.requireApp(c.Request().Context(), app); err != nil {
		return err
	}
	return s.deleteRelease(c, app, c.Param("channel"), c.Param("version"))
}

// deleteRelease removes a release from a channel; when it was active, the
// release before it becomes active (the old worker's walk-back).
func (s *Server) deleteRelease(c echo.Context, app, channel, version string) error {
	ctx := c.Request().Context()
	if err := checkChannel(channel); err != nil {
		return err
	}
	if err := checkVersionRef(version, false); err != nil {
		return err
	}
	ch, err := s.requireChannel(ctx, app, channel)
	if err != nil {
		return err
	}
	change, err := s.store.DeleteRelease(ctx, app, ch.Name, version, actor(c), s.cfg.Now())
	if err != nil {
		return bundleNotFound(err, "version %s is not a release of channel %s", version, ch.Name)
	}
	if err := s.refreshApp(ctx, app); err != nil {
		return err
	}
	s.reqLog(c).Info("release deleted", "app", app, "channel", ch.Name, "release", version, "now_active", change.To, "user", actor(c))
	return c.JSON(http.StatusOK, change)
}

func (s *Server) handleListBundles(c echo.Context) error {
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	bs, err := s.store.ListBundles(c.Request().Context(), app)
	if err != nil {
		return err
	}
	out := make([]ota.Bundle, 0, len(bs))
	for _, b := range bs {
		if !b.Deleted {
			b.URL = s.bundleURL(&b)
		}
		out = append(out, b)
	}
	return c.JSON(http.StatusOK, out)
}

// handleHistory serves /api/v1/history (every app) and
// /api/v1/apps/:app/history, newest first, paged by ?before=.
func (s *Server) handleHistory(c echo.Context) error {
	q := store.HistoryQuery{Limit: defaultHistoryLimit}
	if c.Param("app") != "" {
		app, err := s.appParam(c)
		if err != nil {
			return err
		}
		q.AppID = app
	} else if t := ciToken(c); t != nil && t.AppID != "" {
		// Every app's history, as far as the token may read: its app.
		q.AppID = t.AppID
	}
	if ch := c.QueryParam("channel"); ch != "" {
		if err := checkChannel(ch); err != nil {
			return err
		}
		q.Channel = ch
	}
	if v := c.QueryParam("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return badRequest("before %q must be an event number from the previous page's next", clip(v))
		}
		q.Before = n
	}
	limit, err := limitParam(c, defaultHistoryLimit, maxHistoryLimit)
	if err != nil {
		return err
	}
	q.Limit = limit
	events, next, err := s.store.History(c.Request().Context(), q)
	if err != nil {
		return err
	}
	if events == nil {
		events = []ota.Event{}
	}
	return c.JSON(http.StatusOK, ota.HistoryPage{Events: events, Next: next})
}

func limitParam(c echo.Context, def, max int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, badRequest("limit %q must be a number from 1 to %d", clip(v), max)
	}
	return n, nil
}

func (s *Server) handleSetOverride(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	device, err := checkDevice(c.Param("device"))
	if err != nil {
		return err
	}
	var req ota.DeviceOverrideRequest
	if err := s.decodeJSON(c, &req, 0, false); err != nil {
		return err
	}
	if err := checkChannel(req.Channel); err != nil {
		return err
	}
	ch, err := s.requireChannel(ctx, app, req.Channel)
	if err != nil {
		return err
	}
	if ch.Kind == ota.KindAPK {
		return badRequest("channel %s holds APKs; devices can only be pinned to web channels", ch.Name)
	}
	o := store.DeviceOverride{AppID: app, DeviceID: device, Channel: ch.Name}
	if err := s.store.SetOverride(ctx, o, actor(c), s.cfg.Now()); err != nil {
		return err
	}
	if err := s.refreshApp(ctx, app); err != nil {
		return err
	}
	s.reqLog(c).Info("device pinned", "app", app, "device", device, "channel", ch.Name, "user", actor(c))
	return c.JSON(http.StatusOK, o)
}

func (s *Server) handleDeleteOverride(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	device, err := checkDevice(c.Param("device"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteOverride(ctx, app, device, false, actor(c), s.cfg.Now()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return newError(http.StatusNotFound, ota.ErrCodeNotFound, "device %s of app %s is not pinned to a channel", device, app)
		}
		return err
	}
	if err := s.refreshApp(ctx, app); err != nil {
		return err
	}
	s.reqLog(c).Info("device unpinned", "app", app, "device", device, "user", actor(c))
	return c.NoContent(http.StatusNoContent)
}

// handleStatsQuery lists stored device events of an app, oldest first.
func (s *Server) handleStatsQuery(c echo.Context) error {
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	var since time.Time
	if v := c.QueryParam("since"); v != "" {
		since, err = time.Parse(time.RFC3339, v)
		if err != nil {
			return badRequest("since %q must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z", clip(v))
		}
	}
	limit, err := limitParam(c, defaultStatsLimit, maxStatsLimit)
	if err != nil {
		return err
	}
	stats, err := s.store.Stats(c.Request().Context(), app, since, limit)
	if err != nil {
		return err
	}
	if stats == nil {
		stats = []store.StoredStat{}
	}
	return c.JSON(http.StatusOK, stats)
}
