package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/server"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Patterns that must never be in a page: inline scripts, inline styles,
// event handler attributes and javascript: URLs would all need the CSP to
// allow inline code.
var (
	inlineScript = regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	scriptSrc    = regexp.MustCompile(`<script[^>]*\ssrc="([^"]*)"`)
	styleTag     = regexp.MustCompile(`<style[\s>]`)
	styleAttr    = regexp.MustCompile(`\sstyle=`)
	handlerAttr  = regexp.MustCompile(`\son[a-z]+=`)
	jsURL        = regexp.MustCompile(`(?i)(href|src|action)="\s*javascript:`)
	control      = regexp.MustCompile(`<(?:input|select|textarea)\b[^>]*>`)
	controlID    = regexp.MustCompile(`\sid="([^"]+)"`)
)

// TestHeadersAndCSP: every page, logged in or not, carries the strict
// CSP and the other security headers, and has no inline code the CSP
// would have to allow.
func TestHeadersAndCSP(t *testing.T) {
	e := newEnv(t)
	seedRollout(e)
	e.stats(statsEvent("d1", "1.1.0", "set"), statsEvent("d2", "1.1.0", "update_fail"))
	anon := e.browser()
	b := e.browser()
	b.mustLogin()
	check := func(name string, a answer) {
		t.Helper()
		h := a.Header
		if got := h.Get("Content-Security-Policy"); got != csp {
			t.Errorf("%s: Content-Security-Policy = %q", name, got)
		}
		for k, want := range map[string]string{
			"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
			"Cross-Origin-Opener-Policy": "same-origin",
		} {
			if h.Get(k) != want {
				t.Errorf("%s: %s = %q, want %q", name, k, h.Get(k), want)
			}
		}
		if a.StatusCode == http.StatusOK && !strings.HasPrefix(a.Request.URL.Path, "/ui/static/") {
			if h.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: Cache-Control = %q, want no-store", name, h.Get("Cache-Control"))
			}
			for what, re := range map[string]*regexp.Regexp{"inline script": inlineScript, "style element": styleTag,
				"style attribute": styleAttr, "event handler": handlerAttr, "javascript: URL": jsURL} {
				if m := re.FindString(a.Body); m != "" {
					t.Errorf("%s has an %s: %q", name, what, m)
				}
			}
			for _, m := range control.FindAllStringSubmatch(a.Body, -1) {
				if strings.Contains(m[0], `type="hidden"`) {
					continue
				}
				id := controlID.FindStringSubmatch(m[0])
				if id == nil || !strings.Contains(a.Body, `<label for="`+id[1]+`"`) {
					t.Errorf("%s has a control without a label: %s", name, m[0])
				}
			}
			for _, m := range scriptSrc.FindAllStringSubmatch(a.Body, -1) {
				if !strings.HasPrefix(m[1], "/ui/static/") {
					t.Errorf("%s loads a script from %q", name, m[1])
				}
			}
		}
	}
	check("login form", anon.get("/ui/login"))
	check("redirect to login", anon.get(stablePath))
	check("not found", b.get("/ui/nothing/here"))
	check("unknown app", b.get("/ui/apps/no.such.app"))
	for _, p := range allPages {
		a := b.get(p)
		if a.StatusCode != http.StatusOK && a.StatusCode != http.StatusSeeOther {
			t.Errorf("%s: status %d\n%s", p, a.StatusCode, a.Body)
		}
		check(p, a)
	}
	check("health panel", b.get(stablePath+"/health", "HX-Request", "true"))
}

// TestStatic: assets are embedded, typed, and cached forever only when
// asked for by their hash.
func TestStatic(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	page := b.get("/ui/login").Body
	for _, name := range []string{"style.css", "htmx.min.js", "favicon.svg"} {
		m := regexp.MustCompile(`/ui/static/` + regexp.QuoteMeta(name) + `\?v=([0-9a-f]{16})`).FindStringSubmatch(page)
		if m == nil {
			t.Errorf("the login page does not link %s by hash", name)
			continue
		}
		a := b.get(m[0])
		wantStatus(t, a, http.StatusOK)
		if a.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("%s by hash: Cache-Control %q", name, a.Header.Get("Cache-Control"))
		}
		if a.Header.Get("X-Content-Type-Options") != "nosniff" || a.Header.Get("Content-Type") == "" {
			t.Errorf("%s: headers %v", name, a.Header)
		}
		if a := b.get("/ui/static/" + name); a.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("%s without hash: Cache-Control %q", name, a.Header.Get("Cache-Control"))
		}
		if a := b.get(m[0], "If-None-Match", `"`+m[1]+`"`); a.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidated: %d", name, a.StatusCode)
		}
	}
	if a := b.get("/ui/static/htmx.LICENSE.txt"); !strings.Contains(a.Body, "Zero-Clause BSD") {
		t.Errorf("htmx's licence is not served: %d", a.StatusCode)
	}
	wantStatus(t, b.get("/ui/static/nothing.js"), http.StatusNotFound)
	wantStatus(t, b.get("/ui/static/..%2fdashboard.go"), http.StatusNotFound)
}

// Hostile strings, each a working attack if a page printed it raw.
const (
	xssNotes   = `<script>alert("notes")</script>`
	xssApp     = `<img src=x onerror=alert(1)>`
	xssChannel = `"><script>alert(2)</script>`
	xssVersion = `1.0.0<svg/onload=alert(3)>`
	xssUser    = `<b onmouseover=alert(4)>eve</b>`
	xssDevice  = `<script>alert(5)</script>`
	xssHook    = `https://hooks.example.test/<script>alert(6)</script>?<i>=1`
	xssNote    = `<iframe src=javascript:alert(7)>`
)

var hostile = []string{xssNotes, xssApp, xssChannel, xssVersion, xssUser, xssDevice, xssHook, xssNote,
	"<script>alert", "<img src=x", "<svg/onload", "<b onmouseover", "<iframe", "<i>"}

func wantEscaped(t *testing.T, name string, a answer, shown ...string) {
	t.Helper()
	for _, h := range hostile {
		if strings.Contains(a.Body, h) {
			t.Errorf("%s prints %q unescaped", name, h)
		}
	}
	for _, s := range shown {
		if !strings.Contains(a.Body, s) {
			t.Errorf("%s does not show %q", name, s)
		}
	}
}

// TestEscaping: every string a user, a CI job or a device controls is
// escaped wherever a page shows it: app ids, channel names, versions,
// release notes, event notes, user names, device ids, webhook URLs. Names
// the API refuses are put into the store directly, as an older otad or an
// import might have left them.
func TestEscaping(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.deploy(testApp, "stable", "1.0.0")
	e.deploy(testApp, "stable", "1.1.0", "notes", xssNotes, "forced", xssNote)
	for _, in := range []store.PublishInput{
		{Bundle: ota.Bundle{AppID: xssApp, Version: "1.0.0", Kind: ota.KindWeb, SHA256: strings.Repeat("a", 64)}, Channel: xssChannel},
		{Bundle: ota.Bundle{AppID: testApp, Version: xssVersion, Kind: ota.KindWeb, SHA256: strings.Repeat("b", 64), Notes: xssNotes}, Channel: "odd", Note: xssNote},
	} {
		in.Actor, in.Time = xssUser, e.clock.Now()
		if _, err := e.store.Publish(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	hash, _ := hashed(t, "eve's password")
	if err := e.store.CreateUser(ctx, store.User{Name: xssUser, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api().CreateWebhook(ctx, ota.WebhookRequest{URL: xssHook}); err != nil {
		t.Fatalf("webhook: %v", err)
	}
	b := e.browser()
	if a := b.login(xssUser, "eve's password"); a.StatusCode != http.StatusSeeOther {
		t.Fatalf("login as %q: %d\n%s", xssUser, a.StatusCode, a.Body)
	}
	// An action by that user puts the name in the history too.
	if a := b.post(stablePath+"/rollback", url.Values{"csrf": {csrf(t, b.get(stablePath+"/rollback").Body)}, "to": {"1.0.0"}}); a.StatusCode != http.StatusSeeOther {
		t.Fatalf("rollback: %d\n%s", a.StatusCode, a.Body)
	}
	esc := func(s string) string { return strings.NewReplacer("<", "&lt;", ">", "&gt;", `"`, "&#34;").Replace(s) }
	wantEscaped(t, "overview", b.get("/ui/"), esc(xssApp), esc(xssUser))
	wantEscaped(t, "hostile app", b.get("/ui/apps/"+url.PathEscape(xssApp)))
	wantEscaped(t, "hostile channel", b.get("/ui/apps/"+testApp+"/channels/"+url.PathEscape(xssChannel)))
	wantEscaped(t, "app", b.get("/ui/apps/"+testApp), esc(xssUser), esc(xssVersion))
	wantEscaped(t, "channel", b.get(stablePath+"?version="+url.QueryEscape(xssVersion)+"&native="+url.QueryEscape(xssDevice)+"&platform="+url.QueryEscape(xssDevice)),
		esc(xssUser))
	wantEscaped(t, "channel odd", b.get("/ui/apps/"+testApp+"/channels/odd"), esc(xssVersion), esc(xssNotes))
	wantEscaped(t, "rollback to odd", b.get(stablePath+"/rollback?to="+url.QueryEscape(xssVersion)))
	wantEscaped(t, "history", b.get("/ui/apps/"+testApp+"/history?kind=rollback"), esc(xssUser))
	wantEscaped(t, "history notes", b.get("/ui/apps/"+testApp+"/history"), esc(xssNote))
	wantEscaped(t, "history of a hostile channel", b.get("/ui/apps/"+testApp+"/history?channel="+url.QueryEscape(xssChannel)))
	wantEscaped(t, "device", b.get("/ui/apps/"+testApp+"/device?native=1.0.0&device_id="+url.QueryEscape(xssDevice)+
		"&running="+url.QueryEscape(xssVersion)+"&default_channel="+url.QueryEscape(xssChannel)+"&plugin="+url.QueryEscape(xssUser)), esc(xssDevice))
	wantEscaped(t, "webhooks", b.get("/ui/webhooks"), "hooks.example.test")
	wantEscaped(t, "login", b.get("/ui/login?next="+url.QueryEscape(xssChannel)))
	wantEscaped(t, "login error", e.browser().login(xssUser, "wrong"), esc(xssUser))
	wantEscaped(t, "not found", b.get("/ui/"+url.PathEscape(xssDevice)))
}

func hashed(t *testing.T, pw string) ([]byte, error) {
	t.Helper()
	return hashPassword(pw)
}

// TestActions: each action goes through the API (history event with the
// user's name, the device answer changes) after its confirmation, and a
// refusal shows the API's reason.
func TestActions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	seedRollout(e)
	b := e.browser()
	b.mustLogin()
	do := func(path string, form url.Values) answer {
		t.Helper()
		confirm := b.get(path + "?" + form.Encode())
		wantStatus(t, confirm, http.StatusOK)
		form.Set("csrf", csrf(t, confirm.Body))
		return b.post(path, form)
	}
	latest := func() ota.Event {
		t.Helper()
		h, err := e.api().History(ctx, testApp, "", 0, 1)
		if err != nil || len(h.Events) == 0 {
			t.Fatalf("history: %v", err)
		}
		return h.Events[0]
	}
	done := func(a answer, flash string) {
		t.Helper()
		if a.StatusCode != http.StatusSeeOther || a.Header.Get("Location") != stablePath {
			t.Fatalf("action: %d to %q\n%s", a.StatusCode, a.Header.Get("Location"), a.Body)
		}
		page := b.get(stablePath).Body
		i := strings.Index(page, `<div class="flash" role="status">`)
		if i < 0 || !strings.Contains(page[i:i+200], flash) {
			t.Errorf("the channel page does not say %q", flash)
		}
		if strings.Contains(b.get(stablePath).Body, `class="flash"`) {
			t.Errorf("the message %q is shown twice", flash)
		}
	}

	// Rollout: pause, set (a lower percent is refused unless paused), resume, complete.
	confirm := b.get(stablePath + "/rollout?do=pause")
	if !strings.Contains(confirm.Body, "will stop being offered it") || !strings.Contains(confirm.Body, `value="pause"`) {
		t.Errorf("pause confirmation:\n%s", confirm.Body)
	}
	done(do(stablePath+"/rollout", url.Values{"do": {"pause"}}), "paused at 50 %")
	if ev := latest(); ev.Type != ota.EventRollout || ev.Actor != testUser {
		t.Errorf("pause recorded as %+v", ev)
	}
	done(do(stablePath+"/rollout", url.Values{"do": {"set"}, "percent": {"20"}}), "paused at 20 %")
	done(do(stablePath+"/rollout", url.Values{"do": {"resume"}}), "rolling out · 20 %")
	a := do(stablePath+"/rollout", url.Values{"do": {"set"}, "percent": {"10"}})
	if a.StatusCode < 400 || a.StatusCode >= 500 || !strings.Contains(a.Body, `class="error"`) {
		t.Errorf("lowering a running rollout: %d\n%s", a.StatusCode, a.Body)
	}
	a = do(stablePath+"/rollout", url.Values{"do": {"set"}, "percent": {"many"}})
	wantStatus(t, a, http.StatusBadRequest)
	done(do(stablePath+"/rollout", url.Values{"do": {"complete"}}), "live")
	if a := b.get(stablePath + "/rollout?do=pause"); !strings.Contains(a.Body, "has no staged rollout") {
		t.Errorf("pausing a completed rollout is offered:\n%s", a.Body)
	}
	wantStatus(t, b.get(stablePath+"/rollout?do=explode"), http.StatusNotFound)
	wantStatus(t, b.get(stablePath+"/explode"), http.StatusNotFound)

	// Rollback: devices are offered the earlier release, then builtin.
	phone := device("phone", "1.1.0")
	if r := e.poll(phone); r.Error != ota.UpdNoNewVersion {
		t.Fatalf("before the rollback: %+v", r)
	}
	confirm = b.get(stablePath + "/rollback")
	if !strings.Contains(confirm.Body, "will serve 1.0.0 instead of 1.1.0") {
		t.Errorf("rollback confirmation:\n%s", confirm.Body)
	}
	done(do(stablePath+"/rollback", url.Values{}), "Rolled stable back from 1.1.0 to 1.0.0.")
	if r := e.poll(phone); r.Version != "1.0.0" {
		t.Errorf("after the rollback a device got %+v", r)
	}
	if ev := latest(); ev.Type != ota.EventRollback || ev.Actor != testUser || ev.From != "1.1.0" || ev.To != "1.0.0" {
		t.Errorf("rollback recorded as %+v", ev)
	}
	done(do(stablePath+"/rollback", url.Values{"to": {ota.VersionBuiltin}}), "to builtin")
	if r := e.poll(phone); r.Version != ota.VersionBuiltin {
		t.Errorf("after the rollback to builtin a device got %+v", r)
	}
	a = do(stablePath+"/rollback", url.Values{"to": {"9.9.9"}})
	if a.StatusCode != http.StatusNotFound || !strings.Contains(a.Body, "9.9.9") {
		t.Errorf("rollback to a version that does not exist: %d\n%s", a.StatusCode, a.Body)
	}

	// Promote: stable serves what beta serves.
	confirm = b.get(stablePath + "/promote")
	if !strings.Contains(confirm.Body, "will serve 2.0.0, which beta serves now") {
		t.Errorf("promote confirmation:\n%s", confirm.Body)
	}
	done(do(stablePath+"/promote", url.Values{"from": {"beta"}}), "Promoted 2.0.0 to stable")
	if r := e.poll(phone); r.Version != "2.0.0" {
		t.Errorf("after the promotion a device got %+v", r)
	}
	if ev := latest(); ev.Type != ota.EventPromote || ev.Actor != testUser {
		t.Errorf("promotion recorded as %+v", ev)
	}
	a = do(stablePath+"/promote", url.Values{"from": {"nope"}})
	if a.StatusCode != http.StatusNotFound || !strings.Contains(a.Body, "nope") {
		t.Errorf("promote from a missing channel: %d\n%s", a.StatusCode, a.Body)
	}

	// A channel with one release can only go back to the built-in bundle.
	e.deploy(testApp, "solo", "3.0.0")
	solo := "/ui/apps/" + testApp + "/channels/solo/rollback"
	if a := b.get(solo); !strings.Contains(a.Body, "sent back to the bundle built into the app") ||
		!strings.Contains(a.Body, `name="to" value="builtin"`) {
		t.Errorf("rollback of a channel with one release:\n%s", a.Body)
	}
	a = b.post(solo, url.Values{"csrf": {csrf(t, b.get("/ui/").Body)}})
	if a.StatusCode != http.StatusConflict || !strings.Contains(a.Body, "no release before") {
		t.Errorf("rollback without a previous release: %d\n%s", a.StatusCode, a.Body)
	}
	wantStatus(t, b.get("/ui/apps/"+testApp+"/channels/nope"), http.StatusNotFound)
	wantStatus(t, b.get("/ui/apps/no.such.app/channels/stable/rollback"), http.StatusNotFound)
	if !strings.Contains(e.logs.String(), "dashboard action") {
		t.Error("actions are not logged")
	}
}

// TestHealthPanel: device stats show up in the panel, per step and per
// version, against the halt threshold; without JavaScript its links
// lead to the whole page.
func TestHealthPanel(t *testing.T) {
	e := newEnv(t)
	seedRollout(e)
	b := e.browser()
	b.mustLogin()
	panel := func(q string) string {
		t.Helper()
		a := b.get(stablePath+"/health?"+q, "HX-Request", "true")
		wantStatus(t, a, http.StatusOK)
		if strings.Contains(a.Body, "<html") {
			t.Fatal("the panel came with the whole page")
		}
		return a.Body
	}
	if p := panel(""); !strings.Contains(p, "No device has reported") {
		t.Errorf("empty panel:\n%s", p)
	}
	var evs []ota.StatsEvent
	for i := 0; i < 8; i++ {
		evs = append(evs, statsEvent(fmt.Sprintf("ok-%d", i), "1.1.0", "set"))
	}
	evs = append(evs, statsEvent("bad-1", "1.1.0", "update_fail"), statsEvent("bad-2", "1.1.0", "checksum_fail"),
		statsEvent("old-1", "1.0.0", "set"))
	// A delta release's per-file failure names its file after the version.
	evs = append(evs, statsEvent("bad-3", "1.1.0:assets/<b>chunk</b>.js", "download_manifest_checksum_fail"))
	e.stats(evs...)
	p := panel("")
	for _, want := range []string{"8 installs, 3 failures", `<code>checksum_fail</code> 1`, `<code>update_fail</code> 1`,
		"Failing files of delta releases", "assets/&lt;b&gt;chunk&lt;/b&gt;.js", `<code>download_manifest_checksum_fail</code> 1`,
		"27 %", "halts at 20 %", `class="rate-row over"`, `hx-trigger="every 15000ms"`} {
		if !strings.Contains(p, want) {
			t.Errorf("the panel lacks %q", want)
		}
	}
	if p := panel("version=1.0.0&window=7d"); !strings.Contains(p, "Devices reporting 1.0.0") || !strings.Contains(p, "1 install, 0 failures") ||
		!strings.Contains(p, `aria-current="true">7d`) {
		t.Errorf("the 1.0.0 chart over 7 days:\n%s", p)
	}
	// A version nobody reported falls back to the active one.
	if p := panel("version=9.9.9"); !strings.Contains(p, "Devices reporting 1.1.0") {
		t.Error("an unknown version was charted")
	}
	a := b.get(stablePath + "/health?window=30d")
	if a.StatusCode != http.StatusSeeOther || a.Header.Get("Location") != stablePath+"?window=30d#health" {
		t.Errorf("window link without JavaScript: %d %q", a.StatusCode, a.Header.Get("Location"))
	}
	page := b.get(stablePath + "?window=30d")
	if !strings.Contains(page.Body, `aria-current="true">30d`) || !strings.Contains(page.Body, "Distinct devices per day") {
		t.Error("the channel page ignores its window")
	}
	// The next day the 24 hour window is empty again; 7 days still has them.
	e.clock.Advance(25 * time.Hour)
	b.mustLogin()
	if p := panel(""); !strings.Contains(p, "No device has reported") {
		t.Error("yesterday's reports are in the 24 hour window")
	}
	if p := panel("window=7d"); !strings.Contains(p, "8 installs, 3 failures") {
		t.Error("yesterday's reports are not in the 7 day window")
	}
}

// TestHalts: an automatic halt shows as the channel's state, with its
// reason, and in the list of halts.
func TestHalts(t *testing.T) {
	e := newEnv(t)
	e.deploy(testApp, "stable", "1.0.0")
	e.deploy(testApp, "stable", "1.1.0", "rollout", "100")
	if _, err := e.api().PatchChannel(context.Background(), testApp, "stable", ota.ChannelPolicyPatch{MinDevices: ptr(4)}); err != nil {
		t.Fatal(err)
	}
	var evs []ota.StatsEvent
	for i := 0; i < 4; i++ {
		evs = append(evs, statsEvent(fmt.Sprintf("bad-%d", i), "1.1.0", "update_fail"))
	}
	e.stats(evs...)
	ch, _ := e.api().Channel(context.Background(), testApp, "stable")
	if ch.Rollout == nil || !ch.Rollout.Halted {
		t.Fatalf("the release was not halted: %+v", ch)
	}
	b := e.browser()
	b.mustLogin()
	page := b.get(stablePath).Body
	for _, want := range []string{`<span class="badge bad">halted</span>`, "Automatic halts", "failure rate 1.00 (4/4 devices)",
		`id="active-version">1.0.0<`, "Devices reporting 1.1.0"} {
		if !strings.Contains(page, want) {
			t.Errorf("the halted channel's page lacks %q", want)
		}
	}
	if p := b.get("/ui/").Body; !strings.Contains(p, `<span class="badge bad">halted</span>`) {
		t.Error("the overview does not show the halt")
	}
	if p := b.get("/ui/apps/" + testApp + "/history?kind=halt").Body; !strings.Contains(p, "automatic halt") || !strings.Contains(p, ">otad<") {
		t.Error("the history does not list the halt by otad")
	}
}

func ptr[T any](v T) *T { return &v }

// TestHistory: the event log filters by channel and kind and pages back.
func TestHistory(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 60; i++ {
		e.deploy(testApp, "stable", fmt.Sprintf("1.0.%d", i))
	}
	e.deploy(testApp, "beta", "2.0.0")
	if _, err := e.api().Rollback(context.Background(), testApp, "stable", ""); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustLogin()
	hist := "/ui/apps/" + testApp + "/history"
	rows := func(page string) int { return strings.Count(page, `<tr class="ev-`) }
	first := b.get(hist).Body
	if n := rows(first); n != historyPage {
		t.Errorf("first page has %d events, want %d", n, historyPage)
	}
	next := regexp.MustCompile(`before=(\d+)`).FindStringSubmatch(first)
	if next == nil {
		t.Fatal("no link to older events")
	}
	if n := rows(b.get(hist + "?before=" + next[1]).Body); n != 62-historyPage {
		t.Errorf("second page has %d events, want %d", n, 62-historyPage)
	}
	if p := b.get(hist + "?kind=rollback").Body; rows(p) != 1 || !strings.Contains(p, "1.0.59 → 1.0.58") {
		t.Errorf("rollbacks:\n%s", p)
	}
	if p := b.get(hist + "?channel=beta").Body; rows(p) != 1 || !strings.Contains(p, "2.0.0") {
		t.Errorf("beta's history has %d events", rows(p))
	}
	if p := b.get(hist + "?channel=beta&kind=rollback").Body; rows(p) != 0 || !strings.Contains(p, "No events.") {
		t.Error("beta has a rollback")
	}
	if p := b.get(hist + "?kind=" + url.QueryEscape("<x>")).Body; rows(p) != historyPage {
		t.Error("an invalid kind filtered the history")
	}
	wantStatus(t, b.get(hist+"?channel=nope"), http.StatusNotFound)
}

// TestDeviceLookup: what a device gets and why, as otactl explain says,
// also for a channel it is pinned to.
func TestDeviceLookup(t *testing.T) {
	e := newEnv(t)
	seedRollout(e)
	b := e.browser()
	b.mustLogin()
	dev := "/ui/apps/" + testApp + "/device"
	if p := b.get(dev).Body; strings.Contains(p, "answer-h") || !strings.Contains(p, `<option value="beta">beta</option>`) {
		t.Errorf("the empty form:\n%s", p)
	}
	p := b.get(dev + "?device_id=phone-1&native=1.0.0&running=1.0.0&platform=ios").Body
	ex, err := e.api().Explain(context.Background(), testApp, ota.UpdateRequest{Platform: "ios", DeviceID: "phone-1",
		VersionBuild: "1.0.0", VersionName: "1.0.0", PluginVersion: probePlugin})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range ex.Steps {
		if !strings.Contains(p, strings.NewReplacer(`"`, "&#34;", "'", "&#39;").Replace(step)) {
			t.Errorf("the lookup lacks the step %q", step)
		}
	}
	p = b.get(dev + "?device_id=phone-1&native=1.0.0&channel=beta").Body
	if !strings.Contains(p, `id="offered">2.0.0<`) || !strings.Contains(p, "device override") {
		t.Errorf("pinned to beta:\n%s", p)
	}
	p = b.get(dev + "?device_id=phone-1&native=not.a.version").Body
	if !strings.Contains(p, "semver_error") {
		t.Errorf("a bad native version:\n%s", p)
	}
	wantStatus(t, b.get("/ui/apps/no.such.app/device?native=1.0.0"), http.StatusNotFound)
}

// TestNativeTable: the channel page says which release each native range
// gets, inside and outside the rollout's cohort.
func TestNativeTable(t *testing.T) {
	e := newEnv(t)
	e.deploy(testApp, "stable", "1.0.0", "min_native", "1.0.0")
	e.deploy(testApp, "stable", "2.0.0", "min_native", "2.0.0", "rollout", "30")
	b := e.browser()
	b.mustLogin()
	p := b.get(stablePath + "?platform=ios&native=2.5.0").Body
	table := p[strings.Index(p, `id="native-h"`):]
	table = table[:strings.Index(table, "</table>")]
	for _, want := range []string{"In the 30 % rollout", "The other devices", "Below 1.0.0", "From 1.0.0, below 2.0.0", "2.0.0 and later",
		"Native 2.5.0 (asked)", `<span class="mono offer">2.0.0</span>`, `<span class="mono offer">1.0.0</span>`, "platform=ios"} {
		if !strings.Contains(table, want) {
			t.Errorf("the native table lacks %q:\n%s", want, table)
		}
	}
	if strings.Count(table, "<tr>") != 5 {
		t.Errorf("the native table has %d rows, want a header and 4", strings.Count(table, "<tr>"))
	}
}

// TestWebhooksPage lists receivers without their secrets.
func TestWebhooksPage(t *testing.T) {
	e := newEnv(t)
	if _, err := e.api().CreateWebhook(context.Background(), ota.WebhookRequest{URL: "https://user:hunter2@hooks.example.test/otad?token=s3cret&x=1", AppID: testApp,
		Events: []string{ota.EventHalt}}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.mustLogin()
	p := b.get("/ui/webhooks").Body
	for _, secret := range []string{"hunter2", "s3cret"} {
		if strings.Contains(p, secret) {
			t.Errorf("the webhooks page shows %q", secret)
		}
	}
	if !strings.Contains(p, "https://user:•••@hooks.example.test/otad?token=•••&amp;x=•••") || !strings.Contains(p, "automatic halt") {
		t.Errorf("webhooks page:\n%s", p)
	}
}

// TestHealthCache: with HealthCache set, one summary answers the pages of
// every user for that long; a summary ages out.
func TestHealthCache(t *testing.T) {
	e := newEnv(t, func(_ *server.Config, c *Config) { c.HealthCache = time.Hour })
	seedRollout(e)
	b := e.browser()
	b.mustLogin()
	panel := func(br *browser) string { return br.get(stablePath+"/health", "HX-Request", "true").Body }
	if !strings.Contains(panel(b), "No device has reported") {
		t.Fatal("not empty at first")
	}
	e.stats(statsEvent("d1", "1.1.0", "set"))
	other := e.browser()
	other.mustLogin()
	if !strings.Contains(panel(other), "No device has reported") {
		t.Error("the cached summary was not used")
	}
	if !strings.Contains(b.get(stablePath+"/health?window=7d", "HX-Request", "true").Body, "1 install") {
		t.Error("another window was answered from the cache")
	}
	var c healthCache
	k := healthKey{"a", "b", "24h"}
	c.put(k, ota.StatsSummary{AppID: "a"}, time.Millisecond)
	time.Sleep(2 * time.Millisecond)
	if _, ok := c.get(k, time.Millisecond); ok {
		t.Error("a summary outlived its time")
	}
	for i := 0; i < maxCachedHealth+5; i++ {
		c.put(healthKey{"a", fmt.Sprint(i), "24h"}, ota.StatsSummary{}, time.Hour)
	}
	if len(c.m) > maxCachedHealth {
		t.Errorf("%d summaries cached, the bound is %d", len(c.m), maxCachedHealth)
	}
}
