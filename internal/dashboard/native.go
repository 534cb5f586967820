package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// The native-version table answers "which bundle does a device on native
// version N get from this channel?" by asking the API's explain, as if a
// fresh device (on its built-in bundle) pinned to the channel polled: the
// decision /updates makes, not a re-implementation of it.
const (
	// nativeReleases is how many recent releases' native ranges make the
	// table's rows.
	nativeReleases = 20
	maxNativeRows  = 10
	probePlugin    = "7.0.0"
)

var platforms = []string{"android", "ios", "electron"}

// nativeTable is the table, for one platform.
type nativeTable struct {
	App, Channel string
	Platform     string
	Platforms    []string
	Columns      []string
	Rows         []nativeRow
	Asked        string // a native version the user asked about
	Bounded      bool   // some release has a native range
}

type nativeRow struct {
	Label string
	Probe string
	Cells []nativeCell
}

// nativeCell is what one probe device gets.
type nativeCell struct {
	Offer   string // the version offered, "" when none
	Message string // why not, when none
	Kind    string // ota.KindUpToDate, KindBlocked, KindFailed or "offer"
	Explain string // the device page explaining it step by step
}

// predecessor is a round version below v, to stand for "below v" (the
// lowest bound, so every version under it gets the same answer).
func predecessor(v update.Version) (update.Version, bool) {
	switch {
	case v.Major > 0:
		return update.Version{Major: v.Major - 1}, true
	case v.Minor > 0:
		return update.Version{Minor: v.Minor - 1}, true
	case v.Patch > 0:
		return update.Version{Patch: v.Patch - 1}, true
	}
	return v, false
}

// nativeBounds are the versions where what a channel offers may change:
// each recent release's minimum native version, and the version just
// after each maximum.
func (d *Dashboard) nativeBounds(ctx context.Context, ch *ota.Channel) ([]update.Version, error) {
	var bundles []ota.Bundle
	if ch.ActiveBundle != nil {
		bundles = append(bundles, *ch.ActiveBundle)
	}
	seen := map[string]bool{ch.Active: true}
	for i := len(ch.Releases) - 1; i >= 0 && len(seen) <= nativeReleases && d.cfg.Bundles != nil; i-- {
		v := ch.Releases[i].Version
		if seen[v] || v == ota.VersionBuiltin {
			continue
		}
		seen[v] = true
		b, err := d.cfg.Bundles.GetBundle(ctx, ch.AppID, ch.Kind, v)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return nil, err
		}
		bundles = append(bundles, b)
	}
	var out []update.Version
	add := func(v update.Version) {
		if !slices.ContainsFunc(out, func(o update.Version) bool { return o.Compare(v) == 0 }) {
			out = append(out, v)
		}
	}
	for _, b := range bundles {
		if v, err := update.CoerceNative(b.MinNative); b.MinNative != "" && err == nil {
			add(v)
		}
		if v, err := update.CoerceNative(b.MaxNative); b.MaxNative != "" && err == nil {
			add(update.Version{Major: v.Major, Minor: v.Minor, Patch: v.Patch + 1})
		}
	}
	slices.SortFunc(out, update.Version.Compare)
	return out, nil
}

// probeDevices are device ids inside and outside the channel's rollout
// cohort, with the column titles; one device when no rollout splits it.
func probeDevices(ch *ota.Channel) (ids, titles []string) {
	r := ch.Rollout
	if r == nil || !r.InEffect(ch.Active) || r.Paused || r.Halted || r.Percent <= 0 || ch.ActiveBundle == nil {
		return []string{"dashboard-probe"}, []string{"Gets"}
	}
	key := ch.ActiveBundle.SHA256
	if key == "" {
		key = ch.ActiveBundle.Version
	}
	var in, out string
	for i := 0; i < 100000 && (in == "" || out == ""); i++ {
		id := "dashboard-probe-" + strconv.Itoa(i)
		if update.InCohort(id, key, r.Percent) {
			if in == "" {
				in = id
			}
		} else if out == "" {
			out = id
		}
	}
	return []string{in, out}, []string{"In the " + strconv.Itoa(r.Percent) + " % rollout", "The other devices"}
}

func (d *Dashboard) nativeTable(ctx context.Context, c *ota.Client, r *http.Request, app string, ch *ota.Channel) (*nativeTable, error) {
	q := r.URL.Query()
	t := &nativeTable{App: app, Channel: ch.Name, Platform: "android", Platforms: platforms}
	if p := q.Get("platform"); slices.Contains(platforms, p) {
		t.Platform = p
	}
	bounds, err := d.nativeBounds(ctx, ch)
	if err != nil {
		return nil, err
	}
	t.Bounded = len(bounds) > 0
	if len(bounds) > maxNativeRows {
		bounds = bounds[len(bounds)-maxNativeRows:]
	}
	type row struct{ label, probe string }
	var rows []row
	if len(bounds) == 0 {
		rows = append(rows, row{"Any native version", "1.0.0"})
	} else {
		if p, ok := predecessor(bounds[0]); ok {
			rows = append(rows, row{"Below " + bounds[0].String(), p.String()})
		}
		for i, b := range bounds {
			label := b.String() + " and later"
			if i+1 < len(bounds) {
				label = "From " + b.String() + ", below " + bounds[i+1].String()
			}
			rows = append(rows, row{label, b.String()})
		}
	}
	if v := q.Get("native"); v != "" && len(v) <= 64 {
		if _, err := update.CoerceNative(v); err == nil {
			t.Asked = v
			rows = append(rows, row{"Native " + v + " (asked)", v})
		}
	}
	ids, titles := probeDevices(ch)
	t.Columns = titles
	f, tr := false, true
	for _, rw := range rows {
		nr := nativeRow{Label: rw.label, Probe: rw.probe}
		for _, id := range ids {
			req := ota.UpdateRequest{Platform: t.Platform, DeviceID: id, AppID: app, VersionBuild: rw.probe,
				VersionName: ota.VersionBuiltin, PluginVersion: probePlugin, IsEmulator: &f, IsProd: &tr}
			ex, err := c.ExplainPinned(ctx, app, ch.Name, req)
			if err != nil {
				return nil, err
			}
			cell := nativeCell{Offer: ex.Response.Version, Kind: "offer"}
			if ex.Response.Error != "" {
				cell.Offer, cell.Kind, cell.Message = "", ex.Response.Kind, ex.Response.Message
			}
			cell.Explain = "/ui/apps/" + url.PathEscape(app) + "/device?" + url.Values{
				"device_id": {id}, "native": {rw.probe}, "platform": {t.Platform}, "channel": {ch.Name},
			}.Encode()
			nr.Cells = append(nr.Cells, cell)
		}
		t.Rows = append(t.Rows, nr)
	}
	return t, nil
}
