// Package landing answers GET / of otad: a short page for a browser and
// JSON for a program, saying what the server is, which URLs the updater
// plugin is given and where the docs are. Without it, opening the server's
// URL answered with the admin API's 401 about bearer tokens.
package landing

import (
	"bytes"
	"encoding/json"
	"html/template"
	"mime"
	"net/http"
	"strings"

	"github.com/otaship/ota/pkg/ota"
)

// DocsURL is where the documentation of otad and otactl is published.
const DocsURL = "https://github.com/otaship/ota/tree/main/docs"

// Info fills in a ServerInfo for the server at publicURL.
func Info(publicURL, version string) ota.ServerInfo {
	u := strings.TrimRight(publicURL, "/")
	return ota.ServerInfo{
		Name:        "otad",
		Description: "self-hosted live-update server for Capacitor apps (@capgo/capacitor-updater)",
		Version:     version,
		PublicURL:   u,
		UpdateURL:   u + "/updates",
		StatsURL:    u + "/stats",
		ChannelURL:  u + "/channel_self",
		API:         u + "/api/v1",
		Docs:        DocsURL,
	}
}

var page = template.Must(template.New("landing").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>otad {{.Version}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}code,pre{background:#f3f3f3;padding:.1rem .3rem}pre{padding:.6rem;overflow-x:auto}</style>
</head>
<body>
<h1>otad</h1>
<p>This is <strong>otad {{.Version}}</strong>, a {{.Description}}. Apps poll it for web bundles; people deploy with
<code>otactl</code> or the admin API.{{if not .Dashboard}} There is nothing to log in to here.{{end}}</p>
<h2>Point an app at it</h2>
<p>In <code>capacitor.config.json</code>, under <code>plugins.CapacitorUpdater</code>:</p>
<pre>"updateUrl": "{{.UpdateURL}}",
"statsUrl": "{{.StatsURL}}",
"channelUrl": "{{.ChannelURL}}"</pre>
<h2>Deploy to it</h2>
<pre>otactl login --server {{.PublicURL}} --username admin
otactl deploy web</pre>
{{if .Dashboard}}<p>Release managers: the dashboard is at <a href="{{.Dashboard}}">{{.Dashboard}}</a> (same users as otactl).</p>
{{end}}<p>The admin API is under <code>{{.API}}</code> and needs a bearer token.
Health: <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>; build: <a href="/version">/version</a>.</p>
<p>Documentation: <a href="{{.Docs}}">{{.Docs}}</a></p>
</body>
</html>
`))

// Handler serves info: HTML to clients that accept text/html (browsers),
// JSON to every other client. Both are rendered once, here.
func Handler(info ota.ServerInfo) http.Handler {
	var html bytes.Buffer
	// The template is fixed and its data are strings: executing it into
	// memory cannot fail, and a test renders it.
	_ = page.Execute(&html, info)
	js, _ := json.Marshal(info) // strings only: cannot fail
	js = append(js, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Vary", "Accept")
		if wantsHTML(r.Header.Values("Accept")) {
			// Inline style only: the page loads nothing.
			h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
			h.Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(html.Bytes())
			return
		}
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(js)
	})
}

// wantsHTML reports whether an Accept header names text/html with a
// non-zero quality. "*/*" alone (curl, scripts) gets JSON.
func wantsHTML(accept []string) bool {
	for _, v := range accept {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || (mt != "text/html" && mt != "application/xhtml+xml") {
				continue
			}
			if q := params["q"]; q == "0" || q == "0.0" || q == "0.00" || q == "0.000" {
				continue
			}
			return true
		}
	}
	return false
}
