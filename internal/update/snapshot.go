// Package update decides what a device polling /updates is offered. The
// decision is a pure function over an in-memory Snapshot of the release
// state, so the device endpoints never read the disk and the same code
// explains a decision to an operator.
package update

import (
	"cmp"
	"slices"
	"strings"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Snapshot is an immutable view of what devices need. Writers build a new
// one and swap it in; readers never lock. Nothing reachable from a Snapshot
// may be modified once it is published.
type Snapshot struct {
	Apps map[string]*AppView
}

// AppView is one app's device-facing state.
type AppView struct {
	App ota.App
	// Channels by name. Only web channels are here: APK channels never
	// serve devices, so for the device protocol they do not exist.
	Channels map[string]*ChannelView
	// List holds the same channels ordered by ID, then name: the order of
	// the channel list devices get.
	List []*ChannelView
	// Overrides maps a lowercase device id to a channel name.
	Overrides map[string]string
	// Bundles maps a version name to the app's web bundle of that name
	// (deleted bundles excluded), with its URL filled in.
	Bundles map[string]*ota.Bundle
}

// ChannelView is one channel with its active bundle resolved and the
// success answer prepared, so the hot path only copies it.
type ChannelView struct {
	Channel ota.Channel
	// Active is the active bundle, nil when the channel is empty or points at
	// builtin.
	Active *ota.Bundle
	// Builtin is true when the channel sends devices back to the bundle
	// shipped in the app.
	Builtin bool
	// URL is the absolute download URL of Active, "" without one.
	URL string
	// Success is the answer offering Active. Its SessionKey points into this
	// view, so copies share it; nobody may write through it.
	Success ota.UpdateResponse

	sessionKey string
	// Parsed forms of the active version and its native bounds, so the
	// policies need no parsing per request. The ok flags are false when the
	// string is empty or not semver.
	target       Version
	targetOK     bool
	minNative    Version
	minNativeOK  bool
	maxNative    Version
	maxNativeOK  bool
	minNativeBad bool // MinNative is set but not semver
	maxNativeBad bool
}

// URLFunc builds the absolute download URL of a bundle.
type URLFunc func(b *ota.Bundle) string

// Build makes a snapshot from stored state.
func Build(st store.State, url URLFunc) *Snapshot {
	return &Snapshot{Apps: buildApps(st, url)}
}

// WithApp returns a copy of s in which the apps present in st replace their
// old views. Other apps are shared, not copied. When appID is absent from
// st (the app is gone), the copy no longer has it.
func (s *Snapshot) WithApp(appID string, st store.State, url URLFunc) *Snapshot {
	var old map[string]*AppView
	if s != nil {
		old = s.Apps
	}
	n := &Snapshot{Apps: make(map[string]*AppView, len(old)+1)}
	for id, av := range old {
		n.Apps[id] = av
	}
	delete(n.Apps, appID)
	for id, av := range buildApps(st, url) {
		n.Apps[id] = av
	}
	return n
}

// App returns the view of appID, nil when the app is unknown.
func (s *Snapshot) App(appID string) *AppView {
	if s == nil {
		return nil
	}
	return s.Apps[appID]
}

// buildApps turns stored state into app views. Channels, bundles and
// overrides of an app missing from st.Apps still get a view, with a bare
// app record, so a partly written state never hides a channel.
func buildApps(st store.State, url URLFunc) map[string]*AppView {
	apps := make(map[string]*AppView)
	view := func(id string) *AppView {
		av := apps[id]
		if av == nil {
			av = &AppView{
				App:       ota.App{ID: id},
				Channels:  make(map[string]*ChannelView),
				Overrides: make(map[string]string),
				Bundles:   make(map[string]*ota.Bundle),
			}
			apps[id] = av
		}
		return av
	}
	for _, a := range st.Apps {
		view(a.ID).App = a
	}
	for i := range st.Bundles {
		b := st.Bundles[i] // a copy: the view owns it
		if b.Kind == ota.KindAPK || b.Deleted {
			continue
		}
		b.URL = url(&b)
		view(b.AppID).Bundles[b.Version] = &b
	}
	for _, ch := range st.Channels {
		if ch.Kind == ota.KindAPK {
			continue
		}
		av := view(ch.AppID)
		cv := newChannelView(ch, av.Bundles, url)
		av.Channels[ch.Name] = cv
		av.List = append(av.List, cv)
	}
	for _, o := range st.Overrides {
		view(o.AppID).Overrides[strings.ToLower(o.DeviceID)] = o.Channel
	}
	for _, av := range apps {
		slices.SortFunc(av.List, func(a, b *ChannelView) int {
			return cmp.Or(cmp.Compare(a.Channel.ID, b.Channel.ID), strings.Compare(a.Channel.Name, b.Channel.Name))
		})
	}
	return apps
}

func newChannelView(ch ota.Channel, bundles map[string]*ota.Bundle, url URLFunc) *ChannelView {
	cv := &ChannelView{Channel: ch}
	switch {
	case ch.Active == ota.VersionBuiltin:
		cv.Builtin = true
	case ch.Active == "":
	case ch.ActiveBundle != nil && ch.ActiveBundle.Version == ch.Active:
		b := *ch.ActiveBundle
		b.URL = url(&b)
		cv.Active = &b
	default:
		// The store did not fill ActiveBundle; the bundle list has it.
		cv.Active = bundles[ch.Active]
	}
	// The view keeps its own copy of the record so that later changes to
	// the store's value cannot reach a published snapshot.
	cv.Channel.ActiveBundle = cv.Active
	if cv.Active == nil {
		return cv
	}
	b := cv.Active
	cv.URL = b.URL
	cv.Success = ota.UpdateResponse{
		Version:    b.Version,
		URL:        b.URL,
		Checksum:   b.SHA256,
		SessionKey: &cv.sessionKey,
	}
	var err error
	cv.target, err = ParseVersion(b.Version)
	cv.targetOK = err == nil
	if b.MinNative != "" {
		cv.minNative, err = CoerceNative(b.MinNative)
		cv.minNativeOK, cv.minNativeBad = err == nil, err != nil
	}
	if b.MaxNative != "" {
		cv.maxNative, err = CoerceNative(b.MaxNative)
		cv.maxNativeOK, cv.maxNativeBad = err == nil, err != nil
	}
	return cv
}
