package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

//go:embed assets/templates/*.html assets/static/*
var assets embed.FS

// pages holds the parsed templates and the embedded static files.
type pages struct {
	tmpl   map[string]*template.Template
	static map[string]staticFile
}

type staticFile struct {
	data  []byte
	ctype string
	hash  string // first 16 hex digits of the SHA-256, the cache key
}

var contentTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
	".txt": "text/plain; charset=utf-8",
	".png": "image/png",
	".ico": "image/x-icon",
}

// layout is the frame every page is drawn in; partials are the pieces
// pages share (charts, the health panel).
const (
	layoutFile   = "assets/templates/layout.html"
	partialsFile = "assets/templates/partials.html"
)

func loadPages(d *Dashboard) (*pages, error) {
	p := &pages{tmpl: map[string]*template.Template{}, static: map[string]staticFile{}}
	statics, err := fs.Glob(assets, "assets/static/*")
	if err != nil {
		return nil, err
	}
	for _, f := range statics {
		data, err := assets.ReadFile(f)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		ct := contentTypes[path.Ext(f)]
		if ct == "" {
			ct = "application/octet-stream"
		}
		p.static[path.Base(f)] = staticFile{data: data, ctype: ct, hash: hex.EncodeToString(sum[:8])}
	}
	funcs := d.funcs(p)
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, layoutFile, partialsFile)
	if err != nil {
		return nil, fmt.Errorf("dashboard templates: %w", err)
	}
	files, err := fs.Glob(assets, "assets/templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if f == layoutFile || f == partialsFile {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(assets, f)
		if err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", f, err)
		}
		p.tmpl[strings.TrimSuffix(path.Base(f), ".html")] = t
	}
	return p, nil
}

// funcs are the template helpers. Whatever they return is still escaped by
// html/template for its context; none returns template.HTML.
func (d *Dashboard) funcs(p *pages) template.FuncMap {
	return template.FuncMap{
		// asset is the URL of an embedded file, with its hash so that it
		// can be cached forever.
		"asset": func(name string) string {
			f, ok := p.static[name]
			if !ok {
				return "/ui/static/" + url.PathEscape(name)
			}
			return "/ui/static/" + url.PathEscape(name) + "?v=" + f.hash
		},
		"seg":    url.PathEscape,
		"query":  url.QueryEscape,
		"time":   fmtTime,
		"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ago":    func(t time.Time) string { return ago(t, d.cfg.Now()) },
		"pct":    pct,
		"size":   size,
		"short":  short,
		"dash":   func(s string) string { return orDash(s) },
		"kindOf": eventLabel,
		"add":    func(a, b int) int { return a + b },
		"yesno": func(b bool) string {
			if b {
				return "yes"
			}
			return "no"
		},
	}
}

// page is what every template gets.
type page struct {
	Title   string
	User    string
	CSRF    string
	Flash   string
	Nav     string // "apps", "webhooks": the highlighted menu entry
	App     string // the app in the breadcrumb
	Version string
	Data    any
}

// render writes a full page; the template runs into a buffer first so a
// failure sends an error page rather than half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, s *session, status int, name string, pg page) {
	t := d.pages.tmpl[name]
	if t == nil {
		d.log.Error("dashboard template missing", "template", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if s != nil {
		pg.User, pg.CSRF = s.user, s.csrf
		if pg.Flash == "" {
			pg.Flash = d.takeFlash(w, r)
		}
	}
	pg.Version = d.cfg.Version
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", pg); err != nil {
		d.log.Error("dashboard page not rendered", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderFragment writes one named template alone, for htmx to swap in.
func (d *Dashboard) renderFragment(w http.ResponseWriter, name, fragment string, data any) {
	var buf bytes.Buffer
	if err := d.pages.tmpl[name].ExecuteTemplate(&buf, fragment, data); err != nil {
		d.log.Error("dashboard fragment not rendered", "template", fragment, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// renderError shows err as a page: an API refusal with the API's own
// message and status, anything unknown as a logged 500.
func (d *Dashboard) renderError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, msg := errorPage(err)
	if status >= 500 {
		d.log.Error("dashboard request failed", "method", r.Method, "path", r.URL.Path, "err", err,
			"request_id", w.Header().Get("X-Request-Id"))
	}
	d.render(w, r, s, status, "error", page{Title: http.StatusText(status), Data: msg})
}

func errorPage(err error) (int, string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, he.msg
	}
	var ae *ota.APIError
	if errors.As(err, &ae) && ae.Status < 500 {
		msg := ae.Message
		if msg == "" {
			msg = http.StatusText(ae.Status)
		}
		return ae.Status, msg
	}
	return http.StatusInternalServerError, "Something went wrong on the server; its log has the details."
}

// serveStatic serves an embedded asset: cached for a year when asked for
// by its hash (the URLs pages use), revalidated otherwise.
func (d *Dashboard) serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := d.pages.static[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", `"`+f.hash+`"`)
	if r.URL.Query().Get("v") == f.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if r.Header.Get("If-None-Match") == `"`+f.hash+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(f.data)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// ago says how long before now t was, roughly.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	default:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// pct formats a rate in [0, 1] as a percent.
func pct(f float64) string {
	if math.IsNaN(f) {
		return "—"
	}
	p := f * 100
	switch {
	case p == 0:
		return "0 %"
	case p < 10 && p != math.Trunc(p):
		return fmt.Sprintf("%.1f %%", p)
	}
	return fmt.Sprintf("%.0f %%", p)
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// eventLabels name the history's event types for people.
var eventLabels = map[string]string{
	ota.EventUpload:   "upload",
	ota.EventActivate: "activate",
	ota.EventRollback: "rollback",
	ota.EventPromote:  "promote",
	ota.EventDelete:   "delete",
	ota.EventPolicy:   "policy change",
	ota.EventDefault:  "default channel",
	ota.EventOverride: "device pin",
	ota.EventRollout:  "rollout",
	ota.EventHalt:     "automatic halt",
}

func eventLabel(t string) string {
	if l, ok := eventLabels[t]; ok {
		return l
	}
	return t
}
