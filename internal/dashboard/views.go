package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// History page bounds: events shown per page, and how many a filtered
// page may read to find them (the API filters by channel, not by kind).
const (
	historyPage     = 50
	historyScanPage = 200
	historyMaxScan  = 10
)

// historyPage is the event log of an app.
type historyView struct {
	App      string
	Channel  string
	Kind     string
	Channels []string
	Kinds    []option
	Events   []ota.Event
	Next     uint64 // the before= of the next page, 0 when none
	Scanned  bool   // a kind filter stopped reading before finding a full page
}

func validKind(k string) bool {
	if k == "" || len(k) > 32 {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c == '_') {
			return false
		}
	}
	return true
}

func (d *Dashboard) handleHistory(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	c := d.apiClient(r, w, s.token)
	app := r.PathValue("app")
	q := r.URL.Query()
	v := historyView{App: app, Channel: q.Get("channel"), Kind: q.Get("kind")}
	if !validKind(v.Kind) {
		v.Kind = ""
	}
	chs, err := c.Channels(ctx, app)
	if err != nil {
		return err
	}
	for _, ch := range chs {
		v.Channels = append(v.Channels, ch.Name)
	}
	if v.Channel != "" && !slices.Contains(v.Channels, v.Channel) {
		return &httpError{status: http.StatusNotFound, msg: "App " + app + " has no channel " + v.Channel + "."}
	}
	for t, l := range eventLabels {
		v.Kinds = append(v.Kinds, option{t, l})
	}
	slices.SortFunc(v.Kinds, func(a, b option) int { return strings.Compare(a.Label, b.Label) })
	before, _ := strconv.ParseUint(q.Get("before"), 10, 64)
	if v.Kind == "" {
		h, err := c.History(ctx, app, v.Channel, before, historyPage)
		if err != nil {
			return err
		}
		v.Events, v.Next = h.Events, h.Next
	} else {
		for i := 0; i < historyMaxScan; i++ {
			h, err := c.History(ctx, app, v.Channel, before, historyScanPage)
			if err != nil {
				return err
			}
			for _, ev := range h.Events {
				if ev.Type == v.Kind {
					v.Events = append(v.Events, ev)
				}
				if len(v.Events) == historyPage {
					v.Next = ev.Seq
					break
				}
			}
			if len(v.Events) == historyPage || h.Next == 0 {
				break
			}
			before = h.Next
			if i == historyMaxScan-1 {
				v.Next, v.Scanned = h.Next, true
			}
		}
	}
	d.render(w, r, s, http.StatusOK, "history", page{Title: "History · " + app, Nav: "apps", App: app, Data: v})
	return nil
}

// deviceView is the device lookup: what a device would get now, and why.
type deviceView struct {
	App      string
	Channels []string
	Form     deviceForm
	Asked    bool
	Result   *ota.ExplainResponse
	Error    string
	// Story is the device's recent checks, offers and reports, newest
	// first, once otad keeps them; empty until then.
	Story []storyEntry
}

// storyEntry is one thing a device did or was told.
type storyEntry struct {
	Time time.Time
	Kind string // check, offer or report
	Text string
}

type deviceForm struct {
	DeviceID, Platform, Native, Running, Plugin, DefaultChannel, Channel string
}

func (d *Dashboard) handleDevice(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	c := d.apiClient(r, w, s.token)
	app := r.PathValue("app")
	q := r.URL.Query()
	chs, err := c.Channels(ctx, app)
	if err != nil {
		return err
	}
	v := deviceView{App: app, Form: deviceForm{
		DeviceID: strings.TrimSpace(q.Get("device_id")), Platform: q.Get("platform"), Native: strings.TrimSpace(q.Get("native")),
		Running: strings.TrimSpace(q.Get("running")), Plugin: strings.TrimSpace(q.Get("plugin")),
		DefaultChannel: strings.TrimSpace(q.Get("default_channel")), Channel: q.Get("channel"),
	}}
	for _, ch := range chs {
		if ch.Kind == ota.KindWeb {
			v.Channels = append(v.Channels, ch.Name)
		}
	}
	if !slices.Contains(platforms, v.Form.Platform) {
		v.Form.Platform = "android"
	}
	if v.Form.Channel != "" && !slices.Contains(v.Channels, v.Form.Channel) {
		v.Form.Channel = ""
	}
	if v.Form.Plugin == "" {
		v.Form.Plugin = probePlugin
	}
	status := http.StatusOK
	if v.Form.DeviceID != "" {
		if err := d.deviceStory(ctx, c, app, &v); err != nil {
			return err
		}
	}
	if v.Form.DeviceID != "" || v.Form.Native != "" {
		v.Asked = true
		running := v.Form.Running
		if running == "" {
			running = ota.VersionBuiltin
		}
		f, tr := false, true
		req := ota.UpdateRequest{Platform: v.Form.Platform, DeviceID: v.Form.DeviceID, AppID: app, VersionBuild: v.Form.Native,
			VersionName: running, PluginVersion: v.Form.Plugin, DefaultChannel: v.Form.DefaultChannel, IsEmulator: &f, IsProd: &tr}
		var ex ota.ExplainResponse
		if v.Form.Channel != "" {
			ex, err = c.ExplainPinned(ctx, app, v.Form.Channel, req)
		} else {
			ex, err = c.Explain(ctx, app, req)
		}
		switch st, msg := errorPage(err); {
		case err == nil:
			v.Result = &ex
		case st < 500:
			v.Error, status = msg, st
		default:
			return err
		}
	}
	d.render(w, r, s, status, "device", page{Title: "Device · " + app, Nav: "apps", App: app, Data: v})
	return nil
}

// webhookRow is a webhook with its latest delivery.
type webhookRow struct {
	ota.Webhook
	Shown string // the URL with its secrets hidden
	Last  *ota.WebhookDelivery
}

func (d *Dashboard) handleWebhooks(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	c := d.apiClient(r, w, s.token)
	hooks, err := c.Webhooks(ctx)
	if err != nil {
		return err
	}
	rows := make([]webhookRow, 0, len(hooks))
	for _, h := range hooks {
		row := webhookRow{Webhook: h, Shown: redactURL(h.URL)}
		ds, err := c.WebhookDeliveries(ctx, h.ID, 1)
		if err != nil {
			return err
		}
		if len(ds) > 0 {
			row.Last = &ds[0]
		}
		rows = append(rows, row)
	}
	d.render(w, r, s, http.StatusOK, "webhooks", page{Title: "Webhooks", Nav: "webhooks", Data: rows})
	return nil
}

// deviceStory fills in the device's story from what otad remembers of
// it, newest first, and the form from its latest check when the form
// left those fields empty (so a lookup by id alone explains the device as
// it is).
func (d *Dashboard) deviceStory(ctx context.Context, c *ota.Client, app string, v *deviceView) error {
	st, err := c.DeviceStory(ctx, app, v.Form.DeviceID)
	if st, _ := errorPage(err); err != nil && st < 500 {
		return nil // an id the API refuses: the explanation says why
	}
	if err != nil {
		return err
	}
	for _, r := range st.Reports {
		text := r.Action + " of " + r.VersionName
		if r.Unverified {
			text += " (not offered to it: counts for nothing)"
		}
		v.Story = append(v.Story, storyEntry{Time: r.Time, Kind: "report", Text: text})
	}
	if o := st.Offer; o != nil {
		text := fmt.Sprintf("offered %s on channel %s, %d times since %s", o.Version, o.Channel, o.Count, o.First.UTC().Format("2006-01-02 15:04 UTC"))
		if o.Stalled {
			text += ": stalled (kept polling on another version without a word)"
		}
		v.Story = append(v.Story, storyEntry{Time: o.Last, Kind: "offer", Text: text})
	}
	if lc := st.LastCheck; lc != nil {
		v.Story = append(v.Story, storyEntry{Time: lc.At, Kind: "check",
			Text: fmt.Sprintf("checked running %s on channel %s (native %s, plugin %s, %s)", lc.Running, lc.Channel, lc.Native, lc.Plugin, lc.Platform)})
		if v.Form.Native == "" {
			v.Form.Native, v.Form.Plugin, v.Form.Platform = lc.Native, cmpOr(lc.Plugin, v.Form.Plugin), cmpOr(lc.Platform, v.Form.Platform)
			if lc.Running != ota.VersionBuiltin && lc.Running != ota.VersionUnknown {
				v.Form.Running = lc.Running
			}
			if lc.Source == "device" {
				v.Form.DefaultChannel = lc.Channel
			}
		}
	}
	slices.SortStableFunc(v.Story, func(a, b storyEntry) int { return b.Time.Compare(a.Time) })
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
