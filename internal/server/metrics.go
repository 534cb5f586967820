package server

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otaship/ota/internal/capawesome"
	"github.com/otaship/ota/internal/metrics"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// Observability: the access log, the request-scoped logger and the
// Prometheus metrics of the HTTP layer.

// routeBundle is the download route, whose answers count as bundle
// downloads and bytes served.
const routeBundle = "/api/ota/bundle/:key"

// observe writes one access line per request and records its metrics. It
// renders errors itself (c.Error) so it sees the final status. It runs
// after RequestID, so the line carries the request id.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		body := s.limitBodyTime(c) // slow bodies: bodydeadline.go
		if err := next(c); err != nil {
			c.Error(err)
		}
		body.release()
		d := time.Since(start)
		res := c.Response()
		route := c.Path()
		s.metrics.Request(route, c.Request().Method, res.Status, d)
		if route == routeBundle {
			s.metrics.Download(res.Status, res.Size)
		}
		// Device polls are the bulk of the traffic and are counted by the
		// metrics; one log line each would cost more CPU than answering
		// them (see docs/benchmarks.md), so they log at debug level unless
		// they fail on the server's side.
		level := slog.LevelInfo
		if (devicePollRoutes[route] || c.Request().Context().Value(internalKey{}) != nil) && res.Status < 500 {
			level = slog.LevelDebug
		}
		ctx := c.Request().Context()
		if !s.log.Enabled(ctx, level) {
			return nil
		}
		// Only the route template is logged, never the query: a device
		// may put anything there, and an old script a token.
		s.log.LogAttrs(ctx, level, "request",
			slog.String("method", c.Request().Method),
			slog.String("route", route),
			slog.Int("status", res.Status),
			slog.Duration("duration", d),
			slog.Int64("bytes", res.Size),
			slog.String("request_id", res.Header().Get(echo.HeaderXRequestID)),
			slog.String("remote", s.clientIP(c)),
		)
		return nil
	}
}

// devicePollRoutes are the updater plugin's endpoints, called by every
// device on every launch.
var devicePollRoutes = map[string]bool{
	"/updates": true, "/check": true, "/stats": true, "/channel_self": true,
	capawesome.RouteLatest: true, capawesome.RouteChannels: true, capawesome.RouteFiles: true,
}

// reqLog is the logger of a request: the server's, with the request id,
// so every line a request causes can be found by it.
func (s *Server) reqLog(c echo.Context) *slog.Logger {
	return s.log.With("request_id", c.Response().Header().Get(echo.HeaderXRequestID))
}

// MetricsHandler serves /metrics, for a listener of its own
// (otad --metrics-addr). It is nil-safe: without metrics it answers 404.
func (s *Server) MetricsHandler() http.Handler {
	if s.metrics == nil {
		return http.NotFoundHandler()
	}
	return s.metrics.Handler()
}

// handleMetrics serves /metrics on the main listener; newRouter adds the
// route only when Config.MetricsToken is set, and the token is required.
func (s *Server) handleMetrics(c echo.Context) error {
	h := c.Request().Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") ||
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.cfg.MetricsToken)) != 1 {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="otad-metrics"`)
		return newError(http.StatusUnauthorized, ota.ErrCodeUnauthorized, "/metrics needs the bearer token set with --metrics-token")
	}
	s.metrics.Handler().ServeHTTP(c.Response(), c.Request())
	return nil
}

// observeCheck records an answered update check, from either plugin
// (/updates, internal/capawesome): the one place for what otad learns
// from checks.
func (s *Server) observeCheck(snap *update.Snapshot, req *ota.UpdateRequest, d *update.Decision) {
	s.observeUpdate(snap, d)
	s.watchCheck(snap, req, d) // watch.go
}

// observeUpdate counts an update answer. Labels come from the snapshot
// (admin-created), never from the request: an app otad does not have is
// "unknown", and only an offer has a version.
func (s *Server) observeUpdate(snap *update.Snapshot, d *update.Decision) {
	if s.metrics == nil {
		return
	}
	// The snapshot's own string, not the request's: a label value lives
	// as long as the series.
	app := metrics.Unknown
	if av := snap.App(d.AppID); d.AppID != "" && av != nil {
		app = av.App.ID
	}
	kind, version := d.Response.Kind, ""
	if d.Response.Error == "" {
		kind, version = "success", d.Response.Version
	}
	switch kind {
	case "success", ota.KindUpToDate, ota.KindBlocked, ota.KindFailed:
	default:
		kind = metrics.Other
	}
	s.metrics.UpdateAnswer(app, d.Channel, version, kind)
}

// observeStats counts stats events by action, and the reports about
// known versions of known apps by outcome (the per-bundle failure rate).
func (s *Server) observeStats(snap *update.Snapshot, events []ota.StatsEvent) {
	if s.metrics == nil {
		return
	}
	for i := range events {
		ev := &events[i]
		s.metrics.StatsEvent(ev.Action)
		success, failure := successActions[ev.Action], loopActions[ev.Action] || failureActions[ev.Action]
		if !success && !failure {
			continue
		}
		app, version := metrics.Unknown, metrics.Unknown
		if av := snap.App(ev.AppID); av != nil {
			app = ev.AppID
			if _, ok := av.Bundles[ev.VersionName]; ok {
				version = ev.VersionName
			}
		}
		s.metrics.BundleReport(app, version, failure)
	}
}

// healthCollector exposes, at scrape time, the device health auto-halt
// works from: per app and active version, devices that run it and devices
// that reported it failing.
type healthCollector struct {
	s                        *Server
	devices, failed, stalled *prometheus.Desc
	adoption, share          *prometheus.Desc
}

func newHealthCollector(s *Server) *healthCollector {
	return &healthCollector{s: s,
		devices: prometheus.NewDesc("otad_version_devices", "Distinct devices known to run an active version.", []string{"app", "version"}, nil),
		failed:  prometheus.NewDesc("otad_version_failed_devices", "Distinct devices that reported an active version failing.", []string{"app", "version"}, nil),
		stalled: prometheus.NewDesc("otad_version_stalled_devices",
			"Distinct devices stalled on an active version: offered it, kept polling on another past the channel's window, no install or failure reported.",
			[]string{"app", "version"}, nil),
		adoption: prometheus.NewDesc("otad_adoption_devices",
			"Distinct devices whose latest update check today (UTC) ran the version, by app, channel and version (builtin and unknown included).",
			[]string{"app", "channel", "version"}, nil),
		share: prometheus.NewDesc("otad_adoption_share",
			"Share (0 to 1) of the channel's devices checking today (UTC) that run the version.",
			[]string{"app", "channel", "version"}, nil),
	}
}

func (h *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- h.devices
	ch <- h.failed
	ch <- h.stalled
	ch <- h.adoption
	ch <- h.share
}

func (h *healthCollector) Collect(ch chan<- prometheus.Metric) {
	snap := h.s.snap.Load()
	for id, app := range snap.Apps {
		seen := map[string]bool{}
		for _, cv := range app.List {
			v := cv.Channel.Active
			if v == "" || seen[v] || cv.Active == nil {
				continue
			}
			seen[v] = true
			devices, failed, stalled := h.s.health.counts(id, v)
			ch <- prometheus.MustNewConstMetric(h.devices, prometheus.GaugeValue, float64(devices), id, v)
			ch <- prometheus.MustNewConstMetric(h.failed, prometheus.GaugeValue, float64(failed), id, v)
			ch <- prometheus.MustNewConstMetric(h.stalled, prometheus.GaugeValue, float64(stalled), id, v)
		}
	}
	// Adoption's labels are the offer memory's: apps and channels that
	// exist, bundle versions of the app, builtin and unknown (bounded by
	// its target table, and per app and day by the adoption tracker).
	for _, day := range h.s.offers.Adoption().Today() {
		if snap.App(day.AppID) == nil {
			continue
		}
		totals := map[string]int{}
		for _, c := range day.Counts {
			totals[c.Channel] += c.Devices
		}
		for _, c := range day.Counts {
			ch <- prometheus.MustNewConstMetric(h.adoption, prometheus.GaugeValue, float64(c.Devices), day.AppID, c.Channel, c.Version)
			if t := totals[c.Channel]; t > 0 {
				ch <- prometheus.MustNewConstMetric(h.share, prometheus.GaugeValue, float64(c.Devices)/float64(t), day.AppID, c.Channel, c.Version)
			}
		}
	}
}

// initObservability builds the metrics and the webhook dispatcher. New
// calls it once the snapshot and the health tracker exist.
func (s *Server) initObservability(ctx context.Context) error {
	s.metrics = metrics.New()
	if err := s.metrics.Register(newHealthCollector(s)); err != nil {
		return fmt.Errorf("register health metrics: %w", err)
	}
	if err := s.initWebhooks(ctx, s.cfg.Webhooks); err != nil {
		return fmt.Errorf("start webhooks: %w", err)
	}
	return nil
}

// logPanic puts a recovered panic's stack in the server log, with the
// request id, instead of echo's own logger. errorHandler then logs the
// error and answers 500.
func (s *Server) logPanic(c echo.Context, err error, stack []byte) error {
	s.reqLog(c).Error("handler panicked", "err", err, "stack", string(stack))
	return err
}
