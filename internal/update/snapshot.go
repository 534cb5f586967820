// Package update decides what a device polling /updates is offered. The
// decision is a pure function over an in-memory Snapshot of the release
// state, so the device endpoints never read the disk and the same code
// explains a decision to an operator.
package update

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/otaship/ota/internal/download"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Snapshot is an immutable view of what devices need. Writers build a new
// one and swap it in; readers never lock. Nothing reachable from a Snapshot
// may be modified once it is published.
type Snapshot struct {
	Apps map[string]*AppView
	// Unloaded holds apps the store has whose views are not built yet.
	// otad starts with every app here and builds the views in the
	// background (or on an app's first request): a big store keeps a
	// million bundles, and reading them all before listening took seconds.
	// App returns nil for them; the server loads one with WithApp.
	Unloaded map[string]struct{}
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
	// (deleted bundles excluded). Their URL is left empty: a big store
	// keeps a million bundles, and only what a channel offers needs one
	// (Active has it).
	Bundles map[string]*ota.Bundle
	// Manifests maps a version to the files of its delta release, for the
	// delta releases channels serve (store.State.Manifests). Other
	// answers than /updates (another plugin's) may build on them, with
	// FileLink for their download URLs.
	Manifests map[string][]ota.ManifestFile

	// deltas holds the prepared manifest answers of the versions in
	// Manifests; opts builds them (file links, cache). Set when the view
	// is built and only read after.
	deltas map[string]*deltaAnswers
	opts   buildOptions
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
	// URLRenew is when URL must stop being handed out (a presigned URL;
	// see download.Link), zero when never. Snapshot.Relink renews it.
	URLRenew time.Time
	// Success is the answer offering Active. Its SessionKey points into this
	// view, so copies share it; nobody may write through it.
	Success ota.UpdateResponse
	// Staged is true when a rollout limits who is offered Active (see
	// ota.Rollout.InEffect); Channel.Rollout holds it.
	Staged bool

	active offer
	// fallbacks are what a device gets when it may not have Active: outside
	// the rollout cohort, the version failed on it, or its native version
	// is out of range (see fallbackOffers). Nil without Active.
	fallbacks *fallbackList
	cohortKey string
}

// fallbackList prepares a channel's fallback offers on first use. A
// channel keeps every release it ever deployed, so preparing them all at
// start-up would cost a parsed offer per stored bundle (a million on a big
// store) while few channels ever need one.
type fallbackList struct {
	once    sync.Once
	bundles map[string]*ota.Bundle // the app's bundles, until once has run
	url     URLFunc
	deltas  map[string]*deltaAnswers
	offers  []*offer
}

// fallbackOffers returns the channel's fallbacks, newest first: the
// rollout's previous version, then the channel's earlier releases. A
// halted version is never among them.
func (cv *ChannelView) fallbackOffers() []*offer {
	f := cv.fallbacks
	if f == nil {
		return nil
	}
	f.once.Do(func() {
		f.offers = cv.buildFallbacks(f.bundles, f.url, f.deltas)
		f.bundles, f.url, f.deltas = nil, nil, nil
	})
	return f.offers
}

// offer is one bundle a channel may give a device, with its answer
// prepared and its versions parsed, so the policies need no parsing per
// request. The ok flags are false when the string is empty or not semver.
type offer struct {
	version    string
	bundle     *ota.Bundle // nil for builtin
	builtin    bool
	success    ota.UpdateResponse
	body       []byte // success encoded; see Decision.Body
	sessionKey string
	renew      time.Time // when success.URL must stop being handed out
	// delta holds the manifest answers when the bundle is a delta
	// release whose manifest the snapshot holds.
	delta *deltaAnswers

	target       Version
	targetOK     bool
	minNative    Version
	minNativeOK  bool
	maxNative    Version
	maxNativeOK  bool
	minNativeBad bool // MinNative is set but not semver
	maxNativeBad bool
}

// newOffer prepares the offer of bundle b, downloaded from link, with the
// manifest answers of deltas when it is a delta release.
func newOffer(b *ota.Bundle, link download.Link, deltas map[string]*deltaAnswers) *offer {
	o := &offer{version: b.Version, bundle: b, renew: link.Renew, delta: deltas[b.Version]}
	o.success = zipAnswer(b, link.URL, &o.sessionKey)
	o.body = encodeAnswer(&o.success)
	var err error
	o.target, err = ParseVersion(b.Version)
	o.targetOK = err == nil
	if b.MinNative != "" {
		o.minNative, err = CoerceNative(b.MinNative)
		o.minNativeOK, o.minNativeBad = err == nil, err != nil
	}
	if b.MaxNative != "" {
		o.maxNative, err = CoerceNative(b.MaxNative)
		o.maxNativeOK, o.maxNativeBad = err == nil, err != nil
	}
	return o
}

// zipAnswer is the answer offering bundle b's zip at url; sessionKey
// receives the session key the answer points at.
func zipAnswer(b *ota.Bundle, url string, sessionKey *string) ota.UpdateResponse {
	r := ota.UpdateResponse{
		Version:    b.Version,
		URL:        url,
		Checksum:   b.SHA256,
		SessionKey: sessionKey,
	}
	*sessionKey = ""
	if e := b.Encryption; e != nil {
		// The stored bytes are ciphertext: devices verify the decrypted
		// zip against the encrypted checksum (§6).
		r.Checksum = e.EncryptedChecksum
		*sessionKey = e.SessionKey
	}
	return r
}

// encodeAnswer encodes an answer as echo's c.JSON does (encoding/json,
// HTML escaped, a final newline).
func encodeAnswer(r *ota.UpdateResponse) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		return nil // cannot happen for strings and bools; c.JSON then encodes
	}
	return append(b, '\n')
}

// fitsNative reports whether the offer may run on native version v.
func (o *offer) fitsNative(v Version) bool {
	if o.builtin {
		return true
	}
	return !o.minNativeBad && !o.maxNativeBad &&
		(!o.minNativeOK || v.Compare(o.minNative) >= 0) &&
		(!o.maxNativeOK || v.Compare(o.maxNative) <= 0)
}

// URLFunc gives the download link of a bundle (see package download).
type URLFunc func(b *ota.Bundle) download.Link

// Build makes a snapshot from stored state. The snapshot points into
// st.Bundles rather than copying a million records, so the caller must not
// change them afterwards.
func Build(st store.State, url URLFunc, opts ...Option) *Snapshot {
	return &Snapshot{Apps: buildApps(st, url, newBuildOptions(opts))}
}

// Pending returns an empty snapshot in which every app of ids is
// Unloaded.
func Pending(ids []string) *Snapshot {
	s := &Snapshot{Apps: map[string]*AppView{}, Unloaded: make(map[string]struct{}, len(ids))}
	for _, id := range ids {
		s.Unloaded[id] = struct{}{}
	}
	return s
}

// IsUnloaded reports whether appID exists but its view is not built yet.
func (s *Snapshot) IsUnloaded(appID string) bool {
	if s == nil || len(s.Unloaded) == 0 {
		return false
	}
	_, ok := s.Unloaded[appID]
	return ok
}

// WithApp returns a copy of s in which the apps present in st replace their
// old views (pointing into st.Bundles, as Build does), and appID is no
// longer Unloaded. Other apps are shared, not copied. When appID is absent
// from st (the app is gone), the copy no longer has it.
func (s *Snapshot) WithApp(appID string, st store.State, url URLFunc, opts ...Option) *Snapshot {
	var old map[string]*AppView
	var unloaded map[string]struct{}
	if s != nil {
		old, unloaded = s.Apps, s.Unloaded
	}
	n := &Snapshot{Apps: make(map[string]*AppView, len(old)+1)}
	for id, av := range old {
		n.Apps[id] = av
	}
	delete(n.Apps, appID)
	if len(unloaded) > 0 {
		n.Unloaded = make(map[string]struct{}, len(unloaded))
		for id := range unloaded {
			n.Unloaded[id] = struct{}{}
		}
		delete(n.Unloaded, appID)
	}
	for id, av := range buildApps(st, url, newBuildOptions(opts)) {
		n.Apps[id] = av
		delete(n.Unloaded, id)
	}
	return n
}

// Relink returns a copy of s in which every loaded app's channel views are
// built again from their own records with the links url gives now, so
// that expiring download URLs (presigned ones) are renewed without reading
// the store. Apps share everything else (bundles, overrides) with s.
// Every field newChannelView derives is derived again; a view must hold
// nothing that only buildApps computes, except the delta releases'
// answers, which are prepared again here too (their file links expire
// like the zip's).
func (s *Snapshot) Relink(url URLFunc) *Snapshot {
	if s == nil {
		return nil
	}
	n := &Snapshot{Apps: make(map[string]*AppView, len(s.Apps)), Unloaded: s.Unloaded}
	for id, av := range s.Apps {
		nv := &AppView{
			App:       av.App,
			Channels:  make(map[string]*ChannelView, len(av.Channels)),
			List:      make([]*ChannelView, 0, len(av.List)),
			Overrides: av.Overrides,
			Bundles:   av.Bundles,
			Manifests: av.Manifests,
			opts:      av.opts,
		}
		nv.prepareDeltas(url)
		for _, cv := range av.List {
			c := newChannelView(cv.Channel, nv, url)
			nv.Channels[c.Channel.Name] = c
			nv.List = append(nv.List, c)
		}
		n.Apps[id] = nv
	}
	return n
}

// Pinned returns a snapshot of appID alone in which deviceID is pinned
// to channel as by an override, so Explain can tell what a device on that
// channel would get; nil when appID is unknown. It shares everything but
// the overrides with s.
func (s *Snapshot) Pinned(appID, deviceID, channel string) *Snapshot {
	av := s.App(appID)
	if av == nil {
		return nil
	}
	cp := *av
	cp.Overrides = map[string]string{strings.ToLower(deviceID): channel}
	return &Snapshot{Apps: map[string]*AppView{appID: &cp}}
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
func buildApps(st store.State, url URLFunc, o buildOptions) map[string]*AppView {
	apps := make(map[string]*AppView)
	view := func(id string) *AppView {
		av := apps[id]
		if av == nil {
			av = &AppView{
				App:       ota.App{ID: id},
				Channels:  make(map[string]*ChannelView),
				Overrides: make(map[string]string),
				Bundles:   make(map[string]*ota.Bundle),
				opts:      o,
			}
			apps[id] = av
		}
		return av
	}
	for _, a := range st.Apps {
		view(a.ID).App = a
	}
	for i := range st.Bundles {
		b := &st.Bundles[i] // not a copy each: see Build
		if b.Kind == ota.KindAPK || b.Deleted {
			continue
		}
		view(b.AppID).Bundles[b.Version] = b
	}
	for _, m := range st.Manifests {
		av := view(m.AppID)
		if av.Bundles[m.Version] == nil || len(m.Files) == 0 {
			continue
		}
		if av.Manifests == nil {
			av.Manifests = make(map[string][]ota.ManifestFile)
		}
		av.Manifests[m.Version] = m.Files
	}
	for _, av := range apps {
		av.prepareDeltas(url)
	}
	for _, ch := range st.Channels {
		if ch.Kind == ota.KindAPK {
			continue
		}
		av := view(ch.AppID)
		cv := newChannelView(ch, av, url)
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

func newChannelView(ch ota.Channel, av *AppView, url URLFunc) *ChannelView {
	bundles := av.Bundles
	cv := &ChannelView{Channel: ch}
	var link download.Link
	switch {
	case ch.Active == ota.VersionBuiltin:
		cv.Builtin = true
	case ch.Active == "":
	case ch.ActiveBundle != nil && ch.ActiveBundle.Version == ch.Active:
		b := *ch.ActiveBundle
		link = url(&b)
		b.URL = link.URL
		cv.Active = &b
	default:
		// The store did not fill ActiveBundle; the bundle list has it.
		if b := bundles[ch.Active]; b != nil {
			c := *b
			link = url(&c)
			c.URL = link.URL
			cv.Active = &c
		}
	}
	// The view keeps its own copies of the records so that later changes to
	// the store's values cannot reach a published snapshot.
	cv.Channel.ActiveBundle = cv.Active
	cv.Channel.Releases = slices.Clone(ch.Releases)
	if ch.Rollout != nil {
		r := *ch.Rollout
		cv.Channel.Rollout = &r
	}
	if cv.Active == nil {
		return cv
	}
	b := cv.Active
	cv.URL, cv.URLRenew = link.URL, link.Renew
	cv.active = *newOffer(b, link, av.deltas)
	// Success must point at the view's own session key, not the
	// temporary offer's.
	cv.active.success.SessionKey = &cv.active.sessionKey
	cv.Success = cv.active.success
	cv.cohortKey = b.SHA256
	if cv.cohortKey == "" {
		cv.cohortKey = b.Version
	}
	cv.Staged = cv.Channel.Rollout.InEffect(ch.Active)
	cv.fallbacks = &fallbackList{bundles: bundles, url: url, deltas: av.deltas}
	return cv
}

// buildFallbacks prepares the offers of fallbackOffers, each version once.
func (cv *ChannelView) buildFallbacks(bundles map[string]*ota.Bundle, url URLFunc, deltas map[string]*deltaAnswers) []*offer {
	ch, r := &cv.Channel, cv.Channel.Rollout
	var out []*offer
	seen := map[string]bool{ch.Active: true}
	if r != nil && r.Halted {
		seen[r.Target] = true // never fall back onto a halted version
	}
	add := func(v string) {
		if seen[v] || v == "" {
			return
		}
		seen[v] = true
		if v == ota.VersionBuiltin {
			out = append(out, &offer{version: v, builtin: true})
			return
		}
		if fb := bundles[v]; fb != nil {
			out = append(out, newOffer(fb, url(fb), deltas))
		}
	}
	if cv.Staged {
		add(r.Previous)
	}
	// Only releases deployed before the active one: a newer one was
	// replaced on purpose (a rollback).
	i := len(ch.Releases)
	for j := len(ch.Releases) - 1; j >= 0; j-- {
		if ch.Releases[j].Version == ch.Active {
			i = j
			break
		}
	}
	for i--; i >= 0; i-- {
		add(ch.Releases[i].Version)
	}
	return out
}
