package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// Bounds of the health summary: how far back it looks by default, and how
// many stored events it reads at most.
const (
	defaultHealthWindow = 7 * 24 * time.Hour
	maxHealthEvents     = 500000
	healthPage          = 10000
)

// handleRollout changes the staged rollout of a channel's active version:
// {"action":"set","percent":50}, pause, resume or complete.
func (s *Server) handleRollout(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	ch, err := s.channelParam(c, app)
	if err != nil {
		return err
	}
	var req ota.RolloutRequest
	if err := s.decodeJSON(c, &req, 0, false); err != nil {
		return err
	}
	switch req.Action {
	case ota.RolloutSet:
		if req.Percent < 0 || req.Percent > 100 {
			return badRequest("percent %d is not between 0 and 100", req.Percent)
		}
	case ota.RolloutRamp:
		if req.Ramp == nil {
			return badRequest("action ramp needs its schedule: {\"action\":\"ramp\",\"ramp\":{\"steps\":[5,25,50,100],\"every_seconds\":7200}}")
		}
		if err := req.Ramp.Check(); err != nil {
			return badRequest("%v", err)
		}
	case ota.RolloutPause, ota.RolloutResume, ota.RolloutComplete:
	default:
		return badRequest("action %q is unknown; use set (with percent), pause, resume, complete or ramp (with ramp)", clip(req.Action))
	}
	if req.Action != ota.RolloutRamp && req.Ramp != nil {
		return badRequest("ramp goes with action ramp only")
	}
	if ch.Kind != ota.KindWeb {
		return badRequest("channel %s holds %s bundles; only web channels are rolled out to devices", ch.Name, ch.Kind)
	}
	// Pausing stops a release, which must never wait for anyone.
	if req.Action != ota.RolloutPause {
		if err := requireProtected(c, &ch, "a rollout step"); err != nil {
			return err
		}
	}
	updated, err := s.store.SetRollout(ctx, app, ch.Name, req, actor(c), s.cfg.Now())
	if err != nil {
		return err
	}
	if err := s.refreshApp(ctx, app); err != nil {
		return err
	}
	s.reqLog(c).Info("rollout changed", "app", app, "channel", ch.Name, "action", req.Action, "percent", req.Percent, "user", actor(c))
	return c.JSON(http.StatusOK, s.withURL(updated))
}

// handleExplain answers what a device would get and why, with the same
// code and state that answer /updates. The body is an update request; the
// app comes from the path; ?plugin=capawesome explains the check of a
// @capawesome/capacitor-live-update device given in the same terms.
func (s *Server) handleExplain(c echo.Context) error {
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	plugin := update.PluginCapgo
	switch p := c.QueryParam("plugin"); p {
	case "", "capgo":
	case "capawesome":
		plugin = update.PluginCapawesome
	default:
		return badRequest("plugin %q is not capgo or capawesome", clip(p))
	}
	var req ota.UpdateRequest
	if err := s.decodeDeviceJSON(c, &req); err != nil {
		return err
	}
	req.AppID = app
	if req.Platform == "" {
		req.Platform = "android"
	}
	if req.DeviceID == "" {
		// Cohorts and failure memory need a device; explain for an
		// anonymous one rather than refusing with missing_info.
		req.DeviceID = "explain"
	}
	req.DeviceID = strings.ToLower(req.DeviceID)
	snap, err := s.snapFor(c.Request().Context(), app)
	if err != nil {
		return err
	}
	// ?channel= explains for a device pinned there (as otactl device pin
	// would), so channels devices cannot choose can be asked about too.
	if name := c.QueryParam("channel"); name != "" {
		if err := checkChannel(name); err != nil {
			return err
		}
		if _, err := s.requireChannel(c.Request().Context(), app, name); err != nil {
			return err
		}
		snap = snap.Pinned(app, req.DeviceID, name)
	}
	d := update.ExplainFor(snap, plugin, &req, s.cfg.DefaultApp, s.health)
	steps := d.Steps
	if steps == nil {
		steps = []string{}
	}
	return c.JSON(http.StatusOK, ota.ExplainResponse{Response: d.Response, Channel: d.Channel, Source: d.Source, Steps: steps})
}

// maxHealthSteps bounds the series of a health summary.
const maxHealthSteps = 400

// handleHealth summarizes device health per version over a time window:
// ?channel=NAME limits it to the channel's releases, ?since=RFC3339 or
// ?window=72h sets the window (default 7 days), and ?step=1h adds the
// same summary for each step of the window (since rounded down to a
// multiple of step), for charts.
func (s *Server) handleHealth(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	since := now.Add(-defaultHealthWindow)
	if v := c.QueryParam("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return badRequest("window %q must be a positive duration, e.g. 24h", clip(v))
		}
		since = now.Add(-d)
	}
	if v := c.QueryParam("since"); v != "" {
		if since, err = time.Parse(time.RFC3339, v); err != nil {
			return badRequest("since %q must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z", clip(v))
		}
	}
	var step time.Duration
	if v := c.QueryParam("step"); v != "" {
		if step, err = time.ParseDuration(v); err != nil || step < time.Minute {
			return badRequest("step %q must be a duration of at least 1m, e.g. 1h", clip(v))
		}
		since = since.Truncate(step)
		if n := now.Sub(since) / step; n >= maxHealthSteps {
			return badRequest("window / step gives %d steps; at most %d are allowed", n+1, maxHealthSteps)
		}
	}
	out := ota.StatsSummary{AppID: app, Since: since}
	var keep func(string) bool
	if name := c.QueryParam("channel"); name != "" {
		if err := checkChannel(name); err != nil {
			return err
		}
		ch, err := s.requireChannel(ctx, app, name)
		if err != nil {
			return err
		}
		out.Channel = ch.Name
		versions := map[string]bool{ch.Active: true}
		for _, r := range ch.Releases {
			versions[r.Version] = true
		}
		if r := ch.Rollout; r != nil {
			versions[r.Target] = true
		}
		keep = func(v string) bool { return versions[v] }
	}
	var events []store.StoredStat
	from := since
	for len(events) < maxHealthEvents {
		page, err := s.store.Stats(ctx, app, from, healthPage)
		if err != nil {
			return err
		}
		events = append(events, page...)
		if len(page) < healthPage {
			break
		}
		// Pages overlap on equal timestamps; counting distinct devices
		// makes the overlap harmless. A page of one instant moves on.
		last := page[len(page)-1].Received
		if !last.After(from) || last.Equal(page[0].Received) {
			last = last.Add(time.Nanosecond)
		}
		from = last
	}
	out.Versions = summarize(events, keep)
	s.addStalled(app, &out, keep)
	if step > 0 {
		out.Series = healthSeries(events, keep, since, now, step)
	}
	return c.JSON(http.StatusOK, out)
}

// healthSeries summarizes events, oldest first, step by step from since
// to now: each step counts the distinct devices that reported in it.
func healthSeries(events []store.StoredStat, keep func(string) bool, since, now time.Time, step time.Duration) []ota.HealthStep {
	var out []ota.HealthStep
	i := 0
	for start := since; !start.After(now); start = start.Add(step) {
		end := start.Add(step)
		j := i
		for j < len(events) && events[j].Received.Before(end) {
			j++
		}
		out = append(out, ota.HealthStep{Start: start, Versions: summarize(events[i:j], keep)})
		i = j
	}
	return out
}

// maxNativeField bounds the native fingerprint of an upload.
const maxNativeField = 64 << 10

// checkSafetyFields reads an upload's rollout, native and forced fields
// into in.
func checkSafetyFields(fields map[string]string, kind string, in *store.PublishInput) error {
	if v := fields["rollout"]; v != "" {
		n, err := strconv.Atoi(strings.TrimSuffix(v, "%"))
		if err != nil || n < 1 || n > 100 {
			return badRequest("rollout %q must be a percent from 1 to 100", clip(v))
		}
		if kind != ota.KindWeb {
			return badRequest("rollout applies to web bundles only; devices never download %s bundles", kind)
		}
		in.Rollout = n
	}
	if v := fields["native"]; v != "" {
		if len(v) > maxNativeField {
			return badRequest("native fingerprint is %d bytes; at most %d are accepted", len(v), maxNativeField)
		}
		var fp ota.NativeFingerprint
		dec := json.NewDecoder(strings.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fp); err != nil {
			return badRequest("native must be a JSON object {\"capacitor\":\"7.0.0\",\"plugins\":[\"name@version\"]}: %v", err)
		}
		in.Bundle.Native = &fp
	}
	if v := fields["forced"]; v != "" {
		if err := checkNotes(v); err != nil {
			return err
		}
		in.Note = "native check overridden: " + v
	}
	return nil
}
