package server

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// The admin API's views of what the offer memory keeps: adoption per day,
// stalled installs beside health, and one device's story.

// addStalled fills in each version's live stalled installs (those of the
// versions keep allows, nil: all), adding the versions that have only
// stalled installs.
func (s *Server) addStalled(app string, out *ota.StatsSummary, keep func(string) bool) {
	seen := map[string]bool{}
	for i := range out.Versions {
		v := &out.Versions[i]
		seen[v.Version] = true
		_, _, v.Stalled = s.health.counts(app, v.Version)
	}
	av := s.snap.Load().App(app)
	if av == nil {
		return
	}
	// Versions channels serve may have stalled installs and no report yet.
	for _, cv := range av.List {
		for _, v := range []string{cv.Channel.Active, rolloutTarget(cv.Channel.Rollout)} {
			if v == "" || seen[v] || (keep != nil && !keep(v)) {
				continue
			}
			seen[v] = true
			if _, _, st := s.health.counts(app, v); st > 0 {
				out.Versions = append(out.Versions, ota.VersionStats{Version: v, Stalled: st, FailureRate: 0})
			}
		}
	}
	slices.SortFunc(out.Versions, func(a, b ota.VersionStats) int { return compareNames(b.Version, a.Version) })
}

func rolloutTarget(r *ota.Rollout) string {
	if r == nil {
		return ""
	}
	return r.Target
}

// Bounds of the adoption view.
const (
	defaultAdoptionWindow = 7 * 24 * time.Hour
	maxAdoptionWindow     = 90 * 24 * time.Hour
)

// handleAdoption is GET .../apps/{app}/adoption?channel=&since=: per UTC
// day, the devices whose latest check ran each version.
func (s *Server) handleAdoption(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	since := now.Add(-defaultAdoptionWindow)
	if v := c.QueryParam("since"); v != "" {
		if since, err = time.Parse(time.RFC3339, v); err != nil {
			return badRequest("since %q must be an RFC 3339 time, e.g. 2026-01-02T00:00:00Z", clip(v))
		}
	}
	if since.Before(now.Add(-maxAdoptionWindow)) {
		since = now.Add(-maxAdoptionWindow)
	}
	since = since.UTC().Truncate(24 * time.Hour)
	out := ota.AdoptionReport{AppID: app, Since: since, Days: []ota.AdoptionDay{}}
	channel := c.QueryParam("channel")
	if channel != "" {
		if err := checkChannel(channel); err != nil {
			return err
		}
		ch, err := s.requireChannel(ctx, app, channel)
		if err != nil {
			return err
		}
		out.Channel = ch.Name
	}
	for _, d := range s.offers.Adoption().Days(app, since) {
		out.Days = append(out.Days, adoptionDay(d, channel))
	}
	return c.JSON(http.StatusOK, out)
}

// adoptionDay is one stored day as the API shows it: one channel's
// versions, or every channel's added up per version.
func adoptionDay(d store.AdoptionDay, channel string) ota.AdoptionDay {
	out := ota.AdoptionDay{Day: d.Day, Versions: []ota.AdoptionVersion{}}
	idx := map[string]int{}
	for _, c := range d.Counts {
		if channel != "" && c.Channel != channel {
			continue
		}
		i, ok := idx[c.Version]
		if !ok {
			i = len(out.Versions)
			idx[c.Version] = i
			out.Versions = append(out.Versions, ota.AdoptionVersion{Version: c.Version})
		}
		v := &out.Versions[i]
		v.Devices += c.Devices
		v.Estimated = v.Estimated || c.Estimated
		out.Devices += c.Devices
	}
	for i := range out.Versions {
		if out.Devices > 0 {
			out.Versions[i].Share = float64(out.Versions[i].Devices) / float64(out.Devices)
		}
	}
	slices.SortFunc(out.Versions, func(a, b ota.AdoptionVersion) int {
		return cmp.Or(b.Devices-a.Devices, strings.Compare(a.Version, b.Version))
	})
	return out
}

// storyWindow is how far back a device story looks for reports.
const storyWindow = 7 * 24 * time.Hour

// handleDeviceStory is GET .../apps/{app}/devices/{device}.
func (s *Server) handleDeviceStory(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.appParam(c)
	if err != nil {
		return err
	}
	device, err := checkDevice(c.Param("device"))
	if err != nil {
		return err
	}
	if err := s.requireApp(ctx, app); err != nil {
		return err
	}
	snap, err := s.snapFor(ctx, app)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	out := ota.DeviceStory{AppID: app, DeviceID: device, Reports: []ota.DeviceReport{}, ReportsSince: now.Add(-storyWindow)}
	if av := snap.App(app); av != nil {
		out.Pin = av.Overrides[device]
	}
	o, ok := s.offers.Lookup(app, device)
	if ok {
		out.Known = true
		if !o.Seen.IsZero() {
			out.LastCheck = &ota.DeviceCheck{At: o.Seen, Running: o.Running, Channel: o.RunningChannel, Source: o.Source,
				Native: o.Build, Plugin: o.Plugin, Platform: o.Platform, Prod: o.Prod, Emulator: o.Emulator}
		}
		if o.Version != "" {
			out.Offer = &ota.DeviceOffer{Version: o.Version, Channel: o.Channel, Previous: o.Previous, First: o.First, Last: o.Last,
				Count: o.Count, Downloaded: o.Downloaded, Installed: o.Installed, Ran: o.Ran, Failed: o.Failed, Stalled: o.Stalled}
		}
	}
	if err := s.storyReports(c, app, device, &out); err != nil {
		return err
	}
	// What its next check would get: the decision otactl explain shows,
	// from what its latest check said.
	if lc := out.LastCheck; lc != nil && lc.Native != "" {
		req := ota.UpdateRequest{AppID: app, DeviceID: device, Platform: cmp.Or(lc.Platform, "android"), VersionBuild: lc.Native,
			VersionName: lc.Running, PluginVersion: lc.Plugin, IsProd: &lc.Prod, IsEmulator: &lc.Emulator}
		if lc.Source == update.SourceDevice {
			req.DefaultChannel = lc.Channel
		}
		d := update.ExplainFor(snap, update.PluginCapgo, &req, s.cfg.DefaultApp, s.health)
		steps := d.Steps
		if steps == nil {
			steps = []string{}
		}
		out.Explain = &ota.ExplainResponse{Response: d.Response, Channel: d.Channel, Source: d.Source, Steps: steps}
	}
	return c.JSON(http.StatusOK, out)
}

// storyReports fills in the device's newest reports, reading the app's
// stored stats of the story's window (at most maxHealthEvents, as the
// health summary does).
func (s *Server) storyReports(c echo.Context, app, device string, out *ota.DeviceStory) error {
	from, read, skip := out.ReportsSince, 0, 0
	for read < maxHealthEvents {
		page, err := s.store.Stats(c.Request().Context(), app, from, healthPage)
		if err != nil {
			return err
		}
		read += len(page)
		for i := range page {
			ev := &page[i]
			// The page starts at the previous one's last instant: the
			// events of that instant seen already are skipped.
			if skip > 0 && ev.Received.Equal(from) {
				skip--
				continue
			}
			if !strings.EqualFold(ev.Event.DeviceID, device) {
				continue
			}
			out.Reports = append(out.Reports, ota.DeviceReport{Time: ev.Received, Action: ev.Event.Action,
				VersionName: ev.Event.VersionName, Unverified: ev.Unverified})
			if len(out.Reports) > 2*ota.MaxStoryReports {
				out.Reports = out.Reports[len(out.Reports)-ota.MaxStoryReports:]
			}
		}
		if len(page) < healthPage {
			break
		}
		last := page[len(page)-1].Received
		if last.Equal(page[0].Received) {
			from, skip = last.Add(time.Nanosecond), 0 // a page of one instant moves on
			continue
		}
		skip = 0
		for i := len(page) - 1; i >= 0 && page[i].Received.Equal(last); i-- {
			skip++
		}
		from = last
	}
	slices.Reverse(out.Reports)
	if len(out.Reports) > ota.MaxStoryReports {
		out.Reports = out.Reports[:ota.MaxStoryReports]
	}
	return nil
}
