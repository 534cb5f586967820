package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// channelRow is a channel in the tables of the overview and app pages.
type channelRow struct {
	ota.Channel
	Default    bool
	State      string
	StateClass string
}

// rolloutState says in a few words what a channel is doing, with the
// badge class that colours it.
func rolloutState(ch *ota.Channel) (label, class string) {
	r := ch.Rollout
	switch {
	case r != nil && r.Halted:
		return "halted", "bad"
	case ch.Active == "":
		return "empty", "muted"
	case ch.Active == ota.VersionBuiltin:
		return "built-in bundle", "muted"
	case r.InEffect(ch.Active) && r.Paused:
		return "paused at " + strconv.Itoa(r.Percent) + " %", "warn"
	case r.InEffect(ch.Active):
		return "rolling out · " + strconv.Itoa(r.Percent) + " %", "info"
	}
	return "live", "ok"
}

func rowsOf(app ota.App, chs []ota.Channel) []channelRow {
	rows := make([]channelRow, 0, len(chs))
	for _, ch := range chs {
		st, cls := rolloutState(&ch)
		rows = append(rows, channelRow{Channel: ch, Default: ch.Name == app.DefaultChannel, State: st, StateClass: cls})
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Default != rows[j].Default {
			return rows[i].Default
		}
		return rows[i].Name < rows[j].Name
	})
	return rows
}

// appSummary is one app of the overview.
type appSummary struct {
	App      ota.App
	Channels []channelRow
	Err      string
}

func (d *Dashboard) handleOverview(w http.ResponseWriter, r *http.Request, s *session) error {
	c := d.apiClient(r, w, s.token)
	apps, err := c.Apps(r.Context())
	if err != nil {
		return err
	}
	out := make([]appSummary, 0, len(apps))
	for _, a := range apps {
		chs, err := c.Channels(r.Context(), a.ID)
		if st, msg := errorPage(err); err != nil {
			if st >= 500 {
				return err
			}
			// One app the API refuses (a name from before its rules)
			// must not hide the others.
			out = append(out, appSummary{App: a, Err: msg})
			continue
		}
		out = append(out, appSummary{App: a, Channels: rowsOf(a, chs)})
	}
	d.render(w, r, s, http.StatusOK, "overview", page{Title: "Apps", Nav: "apps", Data: out})
	return nil
}

// appPage is an app's channels and its latest events.
type appPage struct {
	App      ota.App
	Channels []channelRow
	Events   []ota.Event
}

func (d *Dashboard) handleApp(w http.ResponseWriter, r *http.Request, s *session) error {
	c := d.apiClient(r, w, s.token)
	id := r.PathValue("app")
	a, err := c.App(r.Context(), id)
	if err != nil {
		return err
	}
	chs, err := c.Channels(r.Context(), id)
	if err != nil {
		return err
	}
	h, err := c.History(r.Context(), id, "", 0, 10)
	if err != nil {
		return err
	}
	d.render(w, r, s, http.StatusOK, "app", page{Title: id, Nav: "apps", App: id,
		Data: appPage{App: a, Channels: rowsOf(a, chs), Events: h.Events}})
	return nil
}

// channelPage is everything the channel page shows.
type channelPage struct {
	App      ota.App
	Channel  ota.Channel
	Default  bool
	State    string
	StateCls string
	Bundle   *ota.Bundle
	Rollout  *ota.Rollout // the rollout of the active version, or a halted one
	Policies []policyRow
	Releases []ota.Release // newest first
	Previous string        // what a plain rollback goes back to
	Events   []ota.Event
	Halts    []ota.Event
	Health   *healthPanel
	Native   *nativeTable
	Others   []string // channels of the same kind, to promote from
	Now      time.Time

	// What otad does not record yet has its place on the page, filled
	// when it does: whether the channel is protected, the scheduled ramp
	// of its rollout, and the adoption of its versions over time (a
	// NewStackedChart). Nil hides them.
	Protected *bool
	Ramp      *rampView
	Adoption  *TimeChart
}

// rampView is the schedule of a staged rollout's steps.
type rampView struct {
	Steps []rampStep
	Note  string // why it holds, when it does
}

// rampStep is one step of a ramp.
type rampStep struct {
	Percent int
	At      time.Time // when it happened, or is due
	State   string    // done, next, held or later
}

// policyRow is one line of the policy table.
type policyRow struct {
	Name, Value, Hint string
}

func policies(p ota.ChannelPolicy, ch *ota.Channel) []policyRow {
	var platforms []string
	for _, pl := range []struct {
		on   bool
		name string
	}{{p.Android, "Android"}, {p.IOS, "iOS"}, {p.Electron, "Electron"}} {
		if pl.on {
			platforms = append(platforms, pl.name)
		}
	}
	builds := []string{}
	if p.AllowProd {
		builds = append(builds, "production")
	}
	if p.AllowDev {
		builds = append(builds, "development")
	}
	kinds := []string{}
	if p.AllowDevice {
		kinds = append(kinds, "devices")
	}
	if p.AllowEmulator {
		kinds = append(kinds, "emulators")
	}
	halt := "off"
	if p.AutoHalt {
		halt = "at " + pct(p.HaltOnFailureRate) + " failures, once " + strconv.Itoa(p.MinDevices) + " devices reported"
	}
	who := "devices pinned by an admin"
	switch {
	case ch.Public:
		who = "every device (public)"
	case p.AllowSelfSet:
		who = "devices that choose it (self-set)"
	}
	upd := p.DisableAutoUpdate
	if upd == "" || upd == ota.DisableNone {
		upd = "any newer version"
	} else {
		upd = "not across a " + strings.ReplaceAll(upd, "_", " ") + " change"
	}
	rows := []policyRow{
		{"Reached by", who, ""},
		{"Platforms", orDash(strings.Join(platforms, ", ")), ""},
		{"Builds", orDash(strings.Join(builds, ", ")), ""},
		{"Hardware", orDash(strings.Join(kinds, ", ")), ""},
		{"Automatic updates", upd, ""},
		{"Below the native version", map[bool]string{true: "refused", false: "allowed"}[p.DisableAutoUpdateUnderNative], ""},
		{"Automatic halt", halt, ""},
	}
	return rows
}

func (d *Dashboard) handleChannel(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	c := d.apiClient(r, w, s.token)
	appID, name := r.PathValue("app"), r.PathValue("channel")
	a, err := c.App(ctx, appID)
	if err != nil {
		return err
	}
	ch, err := c.Channel(ctx, appID, name)
	if err != nil {
		return err
	}
	chs, err := c.Channels(ctx, appID)
	if err != nil {
		return err
	}
	p := channelPage{App: a, Channel: ch, Default: ch.Name == a.DefaultChannel, Bundle: ch.ActiveBundle,
		Policies: policies(ch.Policy, &ch), Previous: previousRelease(&ch), Now: d.cfg.Now()}
	p.State, p.StateCls = rolloutState(&ch)
	if r := ch.Rollout; r != nil && (r.Halted || r.InEffect(ch.Active)) {
		p.Rollout = r
	}
	for i := len(ch.Releases) - 1; i >= 0 && len(p.Releases) < 20; i-- {
		p.Releases = append(p.Releases, ch.Releases[i])
	}
	for _, o := range chs {
		if o.Name != ch.Name && o.Kind == ch.Kind && o.Active != "" {
			p.Others = append(p.Others, o.Name)
		}
	}
	p.Events, p.Halts, err = channelEvents(ctx, c, appID, ch.Name)
	if err != nil {
		return err
	}
	p.Protected = &ch.Policy.Protected
	if p.Rollout != nil {
		p.Ramp = rampOf(p.Rollout)
	}
	if ch.Kind == ota.KindWeb {
		if p.Health, err = d.healthPanel(ctx, c, r, &ch); err != nil {
			return err
		}
		if p.Native, err = d.nativeTable(ctx, c, r, appID, &ch); err != nil {
			return err
		}
		if p.Adoption, err = d.adoptionChart(ctx, c, &ch); err != nil {
			return err
		}
	}
	d.render(w, r, s, http.StatusOK, "channel", page{Title: ch.Name + " · " + appID, Nav: "apps", App: appID, Data: p})
	return nil
}

// channelEvents reads the channel's latest events and, further back, its
// automatic halts: at most a few pages, so an old channel costs no more
// than a young one.
func channelEvents(ctx context.Context, c *ota.Client, app, channel string) (recent, halts []ota.Event, err error) {
	var before uint64
	for page := 0; page < 5; page++ {
		h, err := c.History(ctx, app, channel, before, 200)
		if err != nil {
			return nil, nil, err
		}
		for _, ev := range h.Events {
			if len(recent) < 12 {
				recent = append(recent, ev)
			}
			if ev.Type == ota.EventHalt && len(halts) < 5 {
				halts = append(halts, ev)
			}
		}
		if h.Next == 0 || len(halts) >= 5 {
			break
		}
		before = h.Next
	}
	return recent, halts, nil
}

// previousRelease is what a rollback without a target goes back to, the
// way the store picks it (the release before the active one, re-deploys
// of the active version skipped), for the confirmation to name it. The
// store decides; the result page shows what it did.
func previousRelease(ch *ota.Channel) string {
	i := len(ch.Releases)
	if ch.Active != "" && ch.Active != ota.VersionBuiltin {
		for j, r := range ch.Releases {
			if r.Version == ch.Active {
				i = j
			}
		}
	}
	for i--; i >= 0; i-- {
		if v := ch.Releases[i].Version; v != ch.Active {
			return v
		}
	}
	return ""
}

// The health panel's windows: how far back, and how long one step is.
var windows = []struct {
	Name         string
	Window, Step time.Duration
}{
	{"24h", 24 * time.Hour, time.Hour},
	{"7d", 7 * 24 * time.Hour, 6 * time.Hour},
	{"30d", 30 * 24 * time.Hour, 24 * time.Hour},
}

// healthPanel is the channel's health section, which htmx refreshes.
type healthPanel struct {
	App, Channel string
	Window       string
	Windows      []string
	Version      string   // the charted version
	Versions     []string // versions with reports in the window
	Rows         []healthRow
	Chart        *TimeChart
	Rates        *RateChart
	Policy       ota.ChannelPolicy
	Active       string
	ActiveSeen   int // devices that reported the active version
	Updated      time.Time
	Refresh      string // the panel's own URL
	Every        string // how often it reloads, for hx-trigger
	Empty        bool
	HasStalled   bool // some version has stalled installs to show
	HasFiles     bool // some delta release has failing files to show
}

// healthRow is one version's totals over the window.
type healthRow struct {
	ota.VersionStats
	Devices int
	Over    bool
	Kinds   []kindCount
	Stalled *int // nil until otad tracks stalled installs
}

type kindCount struct {
	Kind  string
	Count int
}

// stalledOf is a version's stalled installs (silent failures otad
// detected), shown only when there are some.
func stalledOf(v ota.VersionStats) (int, bool) { return v.Stalled, v.Stalled > 0 }

func devicesOf(v ota.VersionStats) int {
	if v.FailureRate > 0 {
		return int(float64(v.Failed)/v.FailureRate + 0.5)
	}
	return v.Installed
}

func (d *Dashboard) healthPanel(ctx context.Context, c *ota.Client, r *http.Request, ch *ota.Channel) (*healthPanel, error) {
	q := r.URL.Query()
	win := windows[0]
	for _, w := range windows {
		if w.Name == q.Get("window") {
			win = w
		}
	}
	key := healthKey{ch.AppID, ch.Name, win.Name}
	sum, ok := d.health.get(key, d.cfg.HealthCache)
	if !ok {
		var err error
		if sum, err = c.HealthSeries(ctx, ch.AppID, ch.Name, win.Window, win.Step); err != nil {
			return nil, err
		}
		d.health.put(key, sum, d.cfg.HealthCache)
	}
	hp := &healthPanel{App: ch.AppID, Channel: ch.Name, Window: win.Name, Policy: ch.Policy, Active: ch.Active, Updated: d.cfg.Now()}
	for _, w := range windows {
		hp.Windows = append(hp.Windows, w.Name)
	}
	for _, v := range sum.Versions {
		row := healthRow{VersionStats: v, Devices: devicesOf(v)}
		row.Over = ch.Policy.AutoHalt && row.Devices > 0 && v.FailureRate >= ch.Policy.HaltOnFailureRate
		for k, n := range v.Failures {
			row.Kinds = append(row.Kinds, kindCount{k, n})
		}
		slices.SortFunc(row.Kinds, func(a, b kindCount) int {
			if a.Count != b.Count {
				return b.Count - a.Count
			}
			return strings.Compare(a.Kind, b.Kind)
		})
		if len(v.Files) > 0 {
			hp.HasFiles = true
		}
		if n, ok := stalledOf(v); ok {
			row.Stalled = &n
			hp.HasStalled = true
		}
		hp.Rows = append(hp.Rows, row)
		hp.Versions = append(hp.Versions, v.Version)
		if v.Version == ch.Active {
			hp.ActiveSeen = row.Devices
		}
	}
	hp.Version = ch.Active
	if r := ch.Rollout; r != nil && r.Halted {
		hp.Version = r.Target
	}
	if v := q.Get("version"); v != "" && slices.Contains(hp.Versions, v) {
		hp.Version = v
	}
	if hp.Version == "" && len(hp.Versions) > 0 {
		hp.Version = hp.Versions[0]
	}
	hp.Empty = len(hp.Rows) == 0
	hp.Every = strconv.FormatInt(d.cfg.Refresh.Milliseconds(), 10) + "ms"
	hp.Refresh = "/ui/apps/" + url.PathEscape(ch.AppID) + "/channels/" + url.PathEscape(ch.Name) + "/health?" +
		url.Values{"window": {win.Name}, "version": {hp.Version}}.Encode()

	starts := make([]time.Time, len(sum.Series))
	installs := make([]float64, len(sum.Series))
	failures := make([]float64, len(sum.Series))
	var stalled []float64
	for i, st := range sum.Series {
		starts[i] = st.Start
		for _, v := range st.Versions {
			if v.Version != hp.Version {
				continue
			}
			installs[i], failures[i] = float64(v.Installed), float64(v.Failed)
			if len(v.Files) > 0 {
				hp.HasFiles = true
			}
			if n, ok := stalledOf(v); ok {
				if stalled == nil {
					stalled = make([]float64, len(sum.Series))
				}
				stalled[i] = float64(n)
			}
		}
	}
	series := []Series{{Name: "Installs", Class: "s-installs", Values: installs}, {Name: "Failures", Class: "s-failures", Values: failures}}
	if stalled != nil {
		series = append(series, Series{Name: "Stalled", Class: "s-stalled", Values: stalled})
	}
	title := "Devices reporting " + hp.Version
	if hp.Version == "" {
		title = "Devices reporting"
	}
	hp.Chart = NewTimeChart("health-chart", title, starts, win.Step, series)

	var rates []RateInput
	for _, row := range hp.Rows {
		if len(rates) == 8 {
			break
		}
		in := RateInput{Version: row.Version, Failed: row.Failed, Devices: row.Devices, Rate: row.FailureRate}
		if row.Stalled != nil && row.Devices > 0 {
			f := float64(*row.Stalled) / float64(row.Devices)
			in.Stalled = &f
		}
		rates = append(rates, in)
	}
	threshold := 0.0
	if ch.Policy.AutoHalt {
		threshold = ch.Policy.HaltOnFailureRate
	}
	if len(rates) > 0 {
		hp.Rates = NewRateChart("Failure rate per version", rates, threshold)
	}
	return hp, nil
}

// handleHealthPanel serves the health panel alone: htmx swaps it in every
// few seconds, and the window and version links load it.
func (d *Dashboard) handleHealthPanel(w http.ResponseWriter, r *http.Request, s *session) error {
	c := d.apiClient(r, w, s.token)
	ch, err := c.Channel(r.Context(), r.PathValue("app"), r.PathValue("channel"))
	if err != nil {
		return err
	}
	if ch.Kind != ota.KindWeb {
		return &httpError{status: http.StatusNotFound, msg: "Only web channels have device health."}
	}
	hp, err := d.healthPanel(r.Context(), c, r, &ch)
	if err != nil {
		return err
	}
	if r.Header.Get("HX-Request") != "true" {
		// A browser without JavaScript followed a window link: show the
		// whole channel page at that window.
		to := "/ui/apps/" + url.PathEscape(ch.AppID) + "/channels/" + url.PathEscape(ch.Name) + "?" + r.URL.RawQuery + "#health"
		http.Redirect(w, r, to, http.StatusSeeOther)
		return nil
	}
	d.renderFragment(w, "channel", "health", hp)
	return nil
}

// healthKey names a cached health summary.
type healthKey struct{ app, channel, window string }

// healthCache keeps recent health summaries, at most maxCachedHealth. It
// is shared by every session: every user may read every app's health.
type healthCache struct {
	mu sync.Mutex
	m  map[healthKey]cachedHealth
}

type cachedHealth struct {
	at  time.Time
	sum ota.StatsSummary
}

const maxCachedHealth = 256

func (h *healthCache) get(k healthKey, ttl time.Duration) (ota.StatsSummary, bool) {
	if ttl <= 0 {
		return ota.StatsSummary{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.m[k]
	if !ok || time.Since(c.at) >= ttl {
		return ota.StatsSummary{}, false
	}
	return c.sum, true
}

func (h *healthCache) put(k healthKey, sum ota.StatsSummary, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[healthKey]cachedHealth{}
	}
	if len(h.m) >= maxCachedHealth {
		for key, c := range h.m {
			if time.Since(c.at) >= ttl {
				delete(h.m, key)
			}
		}
		for key := range h.m { // still full: drop any one
			if len(h.m) < maxCachedHealth {
				break
			}
			delete(h.m, key)
		}
	}
	h.m[k] = cachedHealth{at: time.Now(), sum: sum}
}

// rampOf shows a rollout's ramp: the steps taken (the current one since
// StepAt), the next (due at NextAt, or held) and the later ones, at their
// earliest.
func rampOf(r *ota.Rollout) *rampView {
	rp := r.Ramp
	if rp == nil || len(rp.Steps) == 0 {
		return nil
	}
	v := &rampView{}
	for i, p := range rp.Steps {
		st := rampStep{Percent: p, At: rp.StepAt.Add(time.Duration(i-rp.Step) * rp.Every())}
		switch {
		case i <= rp.Step:
			st.State = "done"
			if i < rp.Step {
				st.At = time.Time{}
			}
		case i == rp.Step+1 && rp.Held != "":
			st.State = "held"
		case i == rp.Step+1:
			st.State = "next"
		default:
			st.State = "later"
		}
		v.Steps = append(v.Steps, st)
	}
	if rp.Held != "" {
		v.Note = "Holds since " + rp.HeldAt.UTC().Format("2006-01-02 15:04 UTC") + ": " + rp.Held
	} else if rp.Done() {
		v.Note = "Ramp complete."
	}
	if rp.ApprovedBy != "" {
		v.Note = strings.TrimSpace(v.Note + " Scheduled by " + rp.ApprovedBy + ".")
	}
	return v
}

// adoptionDays is how far back the channel page's adoption chart looks.
const adoptionDays = 30

// adoptionChart is the share of the channel's devices on each version,
// day by day: the versions with the most devices get a band each, the
// rest one band together. Nil without a day of data.
func (d *Dashboard) adoptionChart(ctx context.Context, c *ota.Client, ch *ota.Channel) (*TimeChart, error) {
	rep, err := c.Adoption(ctx, ch.AppID, ch.Name, d.cfg.Now().Add(-adoptionDays*24*time.Hour))
	if err != nil || len(rep.Days) == 0 {
		return nil, err
	}
	totals := map[string]int{}
	for _, day := range rep.Days {
		for _, v := range day.Versions {
			totals[v.Version] += v.Devices
		}
	}
	var names []string
	for v := range totals {
		names = append(names, v)
	}
	slices.SortFunc(names, func(a, b string) int {
		if totals[a] != totals[b] {
			return totals[b] - totals[a]
		}
		return strings.Compare(a, b)
	})
	const bands = 4
	other := len(names) > bands
	if other {
		names = names[:bands-1]
	}
	// Consecutive days from the first with data, so gaps show as gaps.
	first := rep.Days[0].Day
	n := int(rep.Days[len(rep.Days)-1].Day.Sub(first)/(24*time.Hour)) + 1
	starts := make([]time.Time, n)
	for i := range starts {
		starts[i] = first.Add(time.Duration(i) * 24 * time.Hour)
	}
	series := make([]Series, len(names))
	for i, v := range names {
		series[i] = Series{Name: v, Class: "s" + strconv.Itoa(i), Values: make([]float64, n)}
	}
	if other {
		series = append(series, Series{Name: "other", Class: "s" + strconv.Itoa(bands-1), Values: make([]float64, n)})
	}
	for _, day := range rep.Days {
		i := int(day.Day.Sub(first) / (24 * time.Hour))
		for _, v := range day.Versions {
			j := slices.Index(names, v.Version)
			if j < 0 {
				j = len(series) - 1
			}
			series[j].Values[i] += v.Share
		}
	}
	return NewStackedChart("adoption-chart", "Devices per version, by the day's latest check", starts, 24*time.Hour, series), nil
}
