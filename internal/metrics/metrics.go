// Package metrics holds otad's Prometheus metrics in a private registry
// (never the global default one, so tests and embedders can build several
// servers) and serves them in the Prometheus text format.
//
// Every label is bounded: routes are echo's templates, never raw paths;
// apps, channels and versions are what admins created, and values devices
// choose freely are replaced with "unknown" or "other" by the caller or
// here.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/otaship/ota/pkg/ota"
)

// Label values standing in for values outside the known set.
const (
	Unknown = "unknown"
	Other   = "other"
)

// Metrics are otad's collectors. Methods are safe for concurrent use; a
// nil *Metrics records nothing.
type Metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	updates      *prometheus.CounterVec
	stats        *prometheus.CounterVec
	reports      *prometheus.CounterVec
	uploads      *prometheus.CounterVec
	uploadBytes  prometheus.Counter
	downloads    *prometheus.CounterVec
	servedBytes  prometheus.Counter
	hookAttempts *prometheus.CounterVec

	// Children of the vectors every device request touches, by label
	// values (see childCache).
	requestSeries childCache[requestKey, requestSeries]
	updateSeries  childCache[[4]string, prometheus.Counter]
	statsSeries   childCache[string, prometheus.Counter]
	reportSeries  childCache[[3]string, prometheus.Counter]
}

type requestKey struct{ route, method, code string }

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// childCache remembers a vector's children by their label values. A
// vector's WithLabelValues hashes the strings byte by byte and compares
// them under its own lock on every call; this is one map lookup, which
// matters on paths every device takes (update checks, stats events).
// Label values are bounded (see the package comment), and so is the map.
type childCache[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

func (c *childCache[K, V]) get(k K, create func() V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[k]; ok {
		return v
	}
	if c.m == nil {
		c.m = map[K]V{}
	}
	v = create()
	c.m[k] = v
	return v
}

// statusText holds the label value of every HTTP status, so recording a
// request formats no number.
var statusText [600]string

func init() {
	for i := range statusText {
		statusText[i] = strconv.Itoa(i)
	}
}

// New builds the collectors and registers them, with the Go runtime and
// process collectors, in a new registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otad_http_requests_total",
			Help: "HTTP requests by route template, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "otad_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests by route template, method and status (bodies included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5, 30},
		}, []string{"route", "method", "status"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otad_update_answers_total",
			Help: "Answers to update checks by app, channel, offered version and kind (success for an offer, else the refusal kind).",
		}, []string{"app", "channel", "version", "kind"}),
		stats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otad_stats_events_total",
			Help: "Device stats events received, by action (other for actions otad does not know).",
		}, []string{"action"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otad_bundle_reports_total",
			Help: "Device reports about a bundle version: outcome installed (set, app_launch_ready) or failed (failure actions).",
		}, []string{"app", "version", "outcome"}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otad_uploads_total",
			Help: "Accepted bundle uploads by app, kind and whether the version was new (created) or a retry (existing).",
		}, []string{"app", "kind", "result"}),
		uploadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "otad_upload_bytes_total",
			Help: "Bytes of accepted bundle uploads.",
		}),
		downloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otad_bundle_downloads_total",
			Help: "Bundle download requests by status.",
		}, []string{"status"}),
		servedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "otad_bundle_bytes_served_total",
			Help: "Bytes of bundles sent to devices.",
		}),
		hookAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otad_webhook_attempts_total",
			Help: "Webhook delivery attempts by result (ok or failed).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.updates, m.stats, m.reports, m.uploads, m.uploadBytes,
		m.downloads, m.servedBytes, m.hookAttempts,
	)
	return m
}

// Register adds further collectors (the server's gauges) to the registry.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Method bounds the method label: clients may send any token as a method.
func Method(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return Other
}

// Request records one answered HTTP request. route is the route template.
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	code := Other
	if status >= 0 && status < len(statusText) {
		code = statusText[status]
	}
	method = Method(method)
	s := m.requestSeries.get(requestKey{route, method, code}, func() requestSeries {
		return requestSeries{m.requests.WithLabelValues(route, method, code), m.duration.WithLabelValues(route, method, code)}
	})
	s.count.Inc()
	s.duration.Observe(d.Seconds())
}

// UpdateAnswer records an answer to an update check. The caller passes
// Unknown for an app otad does not have; kind is "success" for an offer.
func (m *Metrics) UpdateAnswer(app, channel, version, kind string) {
	if m == nil {
		return
	}
	m.updateSeries.get([4]string{app, channel, version, kind}, func() prometheus.Counter {
		return m.updates.WithLabelValues(app, channel, version, kind)
	}).Inc()
}

// StatsEvent records one device stats event; unknown actions count as
// Other.
func (m *Metrics) StatsEvent(action string) {
	if m == nil {
		return
	}
	if !knownActions[action] {
		action = Other
	}
	m.statsSeries.get(action, func() prometheus.Counter { return m.stats.WithLabelValues(action) }).Inc()
}

// BundleReport records a device's report of a version installed or
// failing. The caller bounds app and version to known ones.
func (m *Metrics) BundleReport(app, version string, failed bool) {
	if m == nil {
		return
	}
	outcome := "installed"
	if failed {
		outcome = "failed"
	}
	m.reportSeries.get([3]string{app, version, outcome}, func() prometheus.Counter {
		return m.reports.WithLabelValues(app, version, outcome)
	}).Inc()
}

// Upload records an accepted upload.
func (m *Metrics) Upload(app, kind string, created bool, size int64) {
	if m == nil {
		return
	}
	result := "existing"
	if created {
		result = "created"
		m.uploadBytes.Add(float64(size))
	}
	m.uploads.WithLabelValues(app, kind, result).Inc()
}

// Download records a bundle download answer and the bytes sent.
func (m *Metrics) Download(status int, sent int64) {
	if m == nil {
		return
	}
	code := Other
	if status >= 0 && status < len(statusText) {
		code = statusText[status]
	}
	m.downloads.WithLabelValues(code).Inc()
	if sent > 0 {
		m.servedBytes.Add(float64(sent))
	}
}

// WebhookAttempt records a webhook delivery attempt.
func (m *Metrics) WebhookAttempt(d ota.WebhookDelivery) {
	if m == nil {
		return
	}
	result := "failed"
	if d.OK {
		result = "ok"
	}
	m.hookAttempts.WithLabelValues(result).Inc()
}

// knownActions are the stats actions of the updater plugin (protocol §3.2)
// and of Capgo's backend; devices may send anything else.
var knownActions = map[string]bool{}

func init() {
	for _, a := range []string{
		"set", "set_fail", "set_next", "reset", "delete", "update_fail", "download_fail",
		"download_0", "download_10", "download_20", "download_30", "download_40", "download_50",
		"download_60", "download_70", "download_80", "download_90", "download_complete",
		"download_zip_start", "download_zip_complete", "download_manifest_start", "download_manifest_complete",
		"download_manifest_file_fail", "download_manifest_checksum_fail", "download_manifest_brotli_fail",
		"manifest_path_fail", "decrypt_fail", "checksum_fail", "checksum_required", "unzip_fail",
		"windows_path_fail", "canonical_path_fail", "directory_path_fail", "low_mem_fail",
		"insufficient_disk_space", "finish_download_fail", "app_moved_to_foreground", "app_moved_to_background",
		"blocked_by_server_url", "app_launch_start", "app_launch_ready", "app_launch_timeout",
		"app_crash", "app_memory_warning", "app_crash_native", "app_anr", "app_killed_low_memory",
		"app_killed_excessive_resource_usage", "app_initialization_failure",
		"webview_javascript_error", "webview_unhandled_rejection", "webview_resource_error",
		"webview_security_policy_violation", "webview_unclean_restart", "webview_render_process_gone",
		"webview_content_process_terminated", "webview_dom_content_loaded", "webview_page_loaded",
		"os_version_changed", "native_app_version_changed", "rate_limit_reached",
		"get", "noNew", "disableAutoUpdateToMajor", "setChannel", "getChannel", "uninstall", "ping",
	} {
		knownActions[a] = true
	}
}
