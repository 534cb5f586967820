package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// Device outcomes that /stats reports about a bundle version (protocol
// §3.2). loopActions are the failures after which the device must not be
// offered the version again (§7.4); every one of them also counts against
// the version's failure rate.
var (
	successActions = map[string]bool{"set": true, "app_launch_ready": true}
	loopActions    = map[string]bool{"update_fail": true, "set_fail": true, "checksum_fail": true, "unzip_fail": true}
	// failureActions count against the rate only. download_fail is special
	// (see countsAsFailure).
	failureActions = map[string]bool{
		"download_fail": true, "decrypt_fail": true, "low_mem_fail": true, "insufficient_disk_space": true,
		"finish_download_fail": true, "windows_path_fail": true, "canonical_path_fail": true, "directory_path_fail": true,
		"download_manifest_file_fail": true, "download_manifest_checksum_fail": true, "download_manifest_brotli_fail": true,
		"manifest_path_fail": true,
	}
)

// defaultHealthMaxDevices bounds the devices remembered per version and
// outcome, and defaultHealthMaxBytes the memory of all of them together,
// so a flood of fake device ids cannot grow memory without bound.
const (
	defaultHealthMaxDevices = 100000
	defaultHealthMaxBytes   = 64 << 20
)

// Memory one remembered device costs in the tracker: its id, the map
// entry, and for a failure the list of actions (the action strings are
// shared constants, see canonAction).
func installedCost(id string) int64 { return int64(len(id)) + 48 }
func failedCost(id string) int64    { return int64(len(id)) + 80 }

const actionCost = 16

// actionStalled marks a stalled install among a device's failure actions
// (it is no action a device sends: the offer memory finds it). It does not
// keep the device from the version (FailedOn), and it is taken back when
// the device reports installing it.
const actionStalled = "stalled"

// canonAction returns the package's own copy of a health action, so the
// failure lists do not hold on to request memory.
func canonAction(a string) string {
	if a == actionStalled {
		return actionStalled
	}
	for k := range loopActions {
		if k == a {
			return k
		}
	}
	for k := range failureActions {
		if k == a {
			return k
		}
	}
	return a
}

// healthFlushDelay is how long new health data may stay only in memory:
// the tracker saves in batches at most this often.
const healthFlushDelay = time.Second

type healthKey struct{ app, version string }

// versionHealth is what the tracker knows of one version: the distinct
// devices that run it and those that reported it failing, with the
// failure actions.
type versionHealth struct {
	installed map[string]struct{}
	failed    map[string][]string
	updated   time.Time
}

// healthTracker holds per-version device health in memory: the failure
// memory the decision consults on every /updates (so the hot path reads no
// disk) and the counts auto-halt compares with a channel's policy. It is
// saved through the store in batches and loaded at start.
type healthTracker struct {
	maxDevices int
	maxBytes   int64

	mu       sync.RWMutex
	versions map[healthKey]*versionHealth
	dirty    map[healthKey]bool
	flushing bool  // a flush is scheduled
	bytes    int64 // memory of the remembered devices (installedCost, failedCost)
}

func newHealthTracker(maxDevices int, maxBytes int64) *healthTracker {
	if maxDevices <= 0 {
		maxDevices = defaultHealthMaxDevices
	}
	if maxBytes <= 0 {
		maxBytes = defaultHealthMaxBytes
	}
	return &healthTracker{maxDevices: maxDevices, maxBytes: maxBytes, versions: map[healthKey]*versionHealth{}, dirty: map[healthKey]bool{}}
}

// room reports whether cost more bytes fit; the caller holds mu.
func (h *healthTracker) room(cost int64) bool { return h.bytes+cost <= h.maxBytes }

// versionBytes is what a version's devices cost; the caller holds mu.
func versionBytes(v *versionHealth) int64 {
	var n int64
	for d := range v.installed {
		n += installedCost(d)
	}
	for d, acts := range v.failed {
		n += failedCost(d) + int64(len(acts))*actionCost
	}
	return n
}

// FailedOn implements update.FailureMemory.
func (h *healthTracker) FailedOn(appID, version, deviceID string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	v := h.versions[healthKey{appID, version}]
	if v == nil {
		return false
	}
	for _, a := range v.failed[deviceID] {
		if loopActions[a] {
			return true
		}
	}
	return false
}

// load replaces the tracker's state with stored records, within the
// same bounds as record (a store written by an otad with larger ones
// loads what fits, failures first: they are what halts a release).
func (h *healthTracker) load(hs []store.VersionHealth) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range hs {
		v := &versionHealth{installed: make(map[string]struct{}, min(len(r.Installed), h.maxDevices)),
			failed: make(map[string][]string, min(len(r.Failed), h.maxDevices)), updated: r.UpdatedAt}
		for d, acts := range r.Failed {
			cost := failedCost(d) + int64(len(acts))*actionCost
			if len(v.failed) >= h.maxDevices || !h.room(cost) {
				break
			}
			for i := range acts {
				acts[i] = canonAction(acts[i])
			}
			v.failed[d] = acts
			h.bytes += cost
		}
		for _, d := range r.Installed {
			if len(v.installed) >= h.maxDevices || !h.room(installedCost(d)) {
				break
			}
			v.installed[d] = struct{}{}
			h.bytes += installedCost(d)
		}
		h.versions[healthKey{r.AppID, r.Version}] = v
	}
}

// healthAction reports whether an action says something about a
// version's health (success or failure).
func healthAction(a string) bool { return successActions[a] || loopActions[a] || failureActions[a] }

// countsAsFailure reports whether an event is a failure of its version.
// download_fail names the running bundle in the plugin's auto path, so it
// only counts against a version the device does not run; and plugins
// before 7.17.0 (6.14.25 in the v6 line) sent it when there was no update
// at all (§3.3).
func countsAsFailure(ev *ota.StatsEvent, installed bool) bool {
	if loopActions[ev.Action] {
		return true
	}
	if !failureActions[ev.Action] {
		return false
	}
	if ev.Action != "download_fail" {
		return true
	}
	if installed {
		return false
	}
	v, err := update.CoerceNative(ev.PluginVersion)
	if err != nil || ev.PluginVersion == "" {
		return true
	}
	if v.Major == 6 {
		return v.Compare(update.Version{Major: 6, Minor: 14, Patch: 25}) >= 0
	}
	return v.Compare(update.Version{Major: 7, Minor: 17}) >= 0
}

// record counts events about versions the snapshot knows and returns the
// versions whose counts changed. Only distinct devices count, so a
// retried batch changes nothing; events marked in unverified (reports of
// versions the device was not offered; nil: none) do not count.
func (h *healthTracker) record(snap *update.Snapshot, events []ota.StatsEvent, unverified []bool, now time.Time) []healthKey {
	var touched []healthKey
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range events {
		ev := &events[i]
		if unverified != nil && unverified[i] {
			continue
		}
		success, failure := successActions[ev.Action], loopActions[ev.Action] || failureActions[ev.Action]
		if (!success && !failure) || ev.DeviceID == "" {
			continue
		}
		version := update.EventVersion(ev.VersionName)
		app := snap.App(ev.AppID)
		if app == nil || app.Bundles[version] == nil {
			continue // not a bundle of ours: devices choose what they send
		}
		k := healthKey{ev.AppID, version}
		v := h.versions[k]
		if v == nil {
			v = &versionHealth{installed: map[string]struct{}{}, failed: map[string][]string{}}
			h.versions[k] = v
		}
		_, installed := v.installed[ev.DeviceID]
		changed := false
		if success && h.unstallLocked(v, ev.DeviceID) {
			changed = true // it was slow, not failing
		}
		switch {
		case success && !installed && len(v.installed) < h.maxDevices && h.room(installedCost(ev.DeviceID)):
			v.installed[ev.DeviceID] = struct{}{}
			h.bytes += installedCost(ev.DeviceID)
			changed = true
		case failure && countsAsFailure(ev, installed):
			acts, known := v.failed[ev.DeviceID]
			cost := int64(actionCost)
			if !known {
				cost += failedCost(ev.DeviceID)
			}
			if (known || len(v.failed) < h.maxDevices) && !slices.Contains(acts, ev.Action) && h.room(cost) {
				v.failed[ev.DeviceID] = append(acts, canonAction(ev.Action))
				h.bytes += cost
				changed = true
			}
		}
		if changed {
			v.updated = now
			h.dirty[k] = true
			if !slices.Contains(touched, k) {
				touched = append(touched, k)
			}
		}
	}
	return touched
}

// counts returns the distinct devices that ran, failed or stalled on a
// version, how many of them reported a failure, and how many more are
// stalled installs of it (without a failure or an install).
func (h *healthTracker) counts(app, version string) (devices, failed, stalled int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	v := h.versions[healthKey{app, version}]
	if v == nil {
		return 0, 0, 0
	}
	devices = len(v.installed)
	for d, acts := range v.failed {
		_, installed := v.installed[d]
		if !installed {
			devices++
		}
		switch {
		case len(acts) != 1 || acts[0] != actionStalled:
			failed++
		case !installed:
			stalled++
		}
	}
	return devices, failed, stalled
}

// markStalled records device as a stalled install of version; changed
// says whether it is new. The bounds of record hold.
func (h *healthTracker) markStalled(app, version, device string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := healthKey{app, version}
	v := h.versions[k]
	if v == nil {
		v = &versionHealth{installed: map[string]struct{}{}, failed: map[string][]string{}}
		h.versions[k] = v
	}
	if _, ok := v.installed[device]; ok {
		return false
	}
	acts, known := v.failed[device]
	cost := int64(actionCost)
	if !known {
		cost += failedCost(device)
	}
	if slices.Contains(acts, actionStalled) || (!known && len(v.failed) >= h.maxDevices) || !h.room(cost) {
		return false
	}
	if !known {
		device = strings.Clone(device)
	}
	v.failed[device] = append(acts, actionStalled)
	h.bytes += cost
	v.updated = now
	h.dirty[k] = true
	return true
}

// unstall takes back device's stalled install of version (it runs it
// now); changed says whether there was one.
func (h *healthTracker) unstall(app, version, device string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := healthKey{app, version}
	v := h.versions[k]
	if v == nil || !h.unstallLocked(v, device) {
		return false
	}
	v.updated = now
	h.dirty[k] = true
	return true
}

// unstallLocked removes the stalled mark of device; the caller holds mu.
func (h *healthTracker) unstallLocked(v *versionHealth, device string) bool {
	acts, ok := v.failed[device]
	i := slices.Index(acts, actionStalled)
	if !ok || i < 0 {
		return false
	}
	h.bytes -= actionCost
	if len(acts) == 1 {
		delete(v.failed, device)
		h.bytes -= failedCost(device)
		return true
	}
	v.failed[device] = slices.Delete(acts, i, i+1)
	return true
}

// prune forgets the versions keep refuses whose health has not changed
// since before, and queues their removal from the store; it returns how
// many it forgot.
func (h *healthTracker) prune(before time.Time, keep func(healthKey) bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for k, v := range h.versions {
		if v.updated.Before(before) && !keep(k) {
			h.bytes -= versionBytes(v)
			delete(h.versions, k)
			h.dirty[k] = true
			n++
		}
	}
	return n
}

// healthRetention is how long the device health of a version that no
// channel serves is kept after the last report that changed it.
const healthRetention = 90 * 24 * time.Hour

// PruneHealth forgets the device health of versions that no channel
// serves (as its active version, or a rollout's target or previous one)
// and that no report changed for healthRetention, in memory and in the
// store. Without it otad would keep every version ever released, each
// with up to 100,000 device ids. Apps not loaded yet keep theirs until
// the next run. It returns how many versions it forgot.
func (s *Server) PruneHealth(ctx context.Context) (int, error) {
	snap := s.snap.Load()
	keep := func(k healthKey) bool {
		if snap.IsUnloaded(k.app) {
			return true
		}
		av := snap.App(k.app)
		if av == nil {
			return false // the app is gone
		}
		for _, cv := range av.List {
			ch := &cv.Channel
			if ch.Active == k.version {
				return true
			}
			if r := ch.Rollout; r != nil && (r.Target == k.version || r.Previous == k.version) {
				return true
			}
		}
		return false
	}
	n := s.health.prune(s.cfg.Now().Add(-healthRetention), keep)
	if n == 0 {
		return 0, nil
	}
	return n, s.flushHealth(ctx)
}

// takeDirty returns the records changed since the last call.
func (h *healthTracker) takeDirty() []store.VersionHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]store.VersionHealth, 0, len(h.dirty))
	for k := range h.dirty {
		v := h.versions[k]
		if v == nil {
			// Pruned: an empty record removes the stored one.
			out = append(out, store.VersionHealth{AppID: k.app, Version: k.version})
			continue
		}
		r := store.VersionHealth{AppID: k.app, Version: k.version, UpdatedAt: v.updated, Failed: make(map[string][]string, len(v.failed))}
		for d := range v.installed {
			r.Installed = append(r.Installed, d)
		}
		slices.Sort(r.Installed)
		for d, acts := range v.failed {
			r.Failed[d] = slices.Clone(acts)
		}
		out = append(out, r)
	}
	clear(h.dirty)
	return out
}

// markDirty puts records that could not be saved back in the queue.
func (h *healthTracker) markDirty(hs []store.VersionHealth) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range hs {
		h.dirty[healthKey{r.AppID, r.Version}] = true
	}
}

// flushHealth saves changed health records. A failed save keeps them
// queued for the next flush.
func (s *Server) flushHealth(ctx context.Context) error {
	hs := s.health.takeDirty()
	if len(hs) == 0 {
		return nil
	}
	if err := s.store.SaveHealth(ctx, hs); err != nil {
		s.health.markDirty(hs)
		return fmt.Errorf("save device health of %d versions: %w", len(hs), err)
	}
	return nil
}

// FlushHealth saves the device health not saved yet; call it at shutdown.
func (s *Server) FlushHealth(ctx context.Context) error { return s.flushHealth(ctx) }

// scheduleHealthFlush saves changed health within healthFlushDelay, so
// a burst of stats costs one write.
func (s *Server) scheduleHealthFlush() {
	h := s.health
	h.mu.Lock()
	if h.flushing {
		h.mu.Unlock()
		return
	}
	h.flushing = true
	h.mu.Unlock()
	time.AfterFunc(healthFlushDelay, func() {
		h.mu.Lock()
		h.flushing = false
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.flushHealth(ctx); err != nil {
			s.log.Error("device health not saved; retrying with the next stats", "err", err)
		}
	})
}

// afterStats counts a stats batch and halts rollouts whose failure rate
// crossed their channel's threshold.
func (s *Server) afterStats(ctx context.Context, snap *update.Snapshot, events []ota.StatsEvent, unverified []bool) error {
	touched := s.health.record(snap, events, unverified, s.cfg.Now())
	if len(touched) == 0 {
		return nil
	}
	s.scheduleHealthFlush()
	for _, k := range touched {
		if err := s.checkHalt(ctx, snap, k); err != nil {
			return err
		}
	}
	return nil
}

// checkHalt halts every channel of the app that serves version with
// auto-halt on, once enough devices reported and too many failed.
func (s *Server) checkHalt(ctx context.Context, snap *update.Snapshot, k healthKey) error {
	app := snap.App(k.app)
	if app == nil {
		return nil
	}
	devices, failed, stalled := s.health.counts(k.app, k.version)
	for _, cv := range app.List {
		ch := &cv.Channel
		p := &ch.Policy
		if ch.Active != k.version || !p.AutoHalt || devices == 0 || devices < p.MinDevices {
			continue
		}
		if r := ch.Rollout; r != nil && r.Halted && r.Target == k.version {
			continue
		}
		reason, over := haltReason(p, devices, failed, stalled)
		if !over {
			continue
		}
		change, err := s.store.Halt(ctx, k.app, ch.Name, k.version, reason, "otad", s.cfg.Now())
		if err != nil {
			return fmt.Errorf("halt %s on channel %s of %s: %w", k.version, ch.Name, k.app, err)
		}
		if err := s.refreshApp(ctx, k.app); err != nil {
			return err
		}
		// The failure memory behind the halt must survive a restart.
		if err := s.flushHealth(ctx); err != nil {
			s.log.Error("device health not saved after a halt", "err", err)
		}
		s.log.Warn("rollout halted", "app", k.app, "channel", ch.Name, "version", k.version,
			"to", change.To, "reason", reason)
	}
	return nil
}

// haltReason says whether a version's counts cross a channel's halt
// threshold, and why. Stalled installs count as failures unless the
// policy ignores them.
func haltReason(p *ota.ChannelPolicy, devices, failed, stalled int) (string, bool) {
	if devices == 0 {
		return "", false
	}
	bad := failed
	if !p.IgnoreStalled {
		bad += stalled
	}
	rate := float64(bad) / float64(devices)
	if rate < p.HaltOnFailureRate {
		return "", false
	}
	if stalled > 0 && !p.IgnoreStalled {
		return fmt.Sprintf("failure rate %.2f (%d failed and %d stalled of %d devices) ≥ %.2f", rate, failed, stalled, devices, p.HaltOnFailureRate), true
	}
	return fmt.Sprintf("failure rate %.2f (%d/%d devices) ≥ %.2f", rate, failed, devices, p.HaltOnFailureRate), true
}

// summarize turns stored stats events into per-version health: distinct
// devices that installed each version and that reported each failure,
// leaving out unverified reports (as the live counts do).
func summarize(events []store.StoredStat, keep func(version string) bool) []ota.VersionStats {
	type acc struct {
		installed map[string]bool
		failed    map[string]bool
		byKind    map[string]map[string]bool
		// files: failing file → action → devices (per-file manifest
		// failures name "<version>:<file>").
		files map[string]map[string]map[string]bool
	}
	vs := map[string]*acc{}
	for i := range events {
		if events[i].Unverified {
			continue // not offered to that device: counts for nothing
		}
		ev := &events[i].Event
		success, failure := successActions[ev.Action], loopActions[ev.Action] || failureActions[ev.Action]
		if (!success && !failure) || ev.DeviceID == "" {
			continue
		}
		version := update.EventVersion(ev.VersionName)
		if version == "" || (keep != nil && !keep(version)) {
			continue
		}
		a := vs[version]
		if a == nil {
			a = &acc{installed: map[string]bool{}, failed: map[string]bool{}, byKind: map[string]map[string]bool{}}
			vs[version] = a
		}
		device := strings.ToLower(ev.DeviceID)
		if success {
			a.installed[device] = true
			continue
		}
		if !countsAsFailure(ev, a.installed[device]) {
			continue
		}
		a.failed[device] = true
		if a.byKind[ev.Action] == nil {
			a.byKind[ev.Action] = map[string]bool{}
		}
		a.byKind[ev.Action][device] = true
		if _, file, ok := strings.Cut(ev.VersionName, ":"); ok && fileActions[ev.Action] && file != "" {
			if a.files == nil {
				a.files = map[string]map[string]map[string]bool{}
			}
			byAction := a.files[file]
			if byAction == nil {
				if len(a.files) >= maxFilesTracked {
					continue // a flood of made-up names stops growing here
				}
				byAction = map[string]map[string]bool{}
				a.files[file] = byAction
			}
			if byAction[ev.Action] == nil {
				byAction[ev.Action] = map[string]bool{}
			}
			byAction[ev.Action][device] = true
		}
	}
	out := make([]ota.VersionStats, 0, len(vs))
	for v, a := range vs {
		st := ota.VersionStats{Version: v, Installed: len(a.installed), Failed: len(a.failed)}
		devices := len(a.installed)
		for d := range a.failed {
			if !a.installed[d] {
				devices++
			}
		}
		if devices > 0 {
			st.FailureRate = float64(st.Failed) / float64(devices)
		}
		if len(a.byKind) > 0 {
			st.Failures = make(map[string]int, len(a.byKind))
			for k, ds := range a.byKind {
				st.Failures[k] = len(ds)
			}
		}
		st.Files = fileFailures(a.files)
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ota.VersionStats) int { return compareNames(b.Version, a.Version) })
	return out
}

// fileActions are the per-file failures of a delta download, whose
// version_name is "<version>:<file>" (protocol §3.2).
var fileActions = map[string]bool{
	"download_manifest_file_fail": true, "download_manifest_checksum_fail": true,
	"download_manifest_brotli_fail": true, "manifest_path_fail": true,
}

// maxFilesTracked bounds the distinct failing files counted per version.
const maxFilesTracked = 1000

// fileFailures lists the failing files, the most devices first (then by
// name), at most ota.MaxFileFailures.
func fileFailures(files map[string]map[string]map[string]bool) []ota.FileFailure {
	if len(files) == 0 {
		return nil
	}
	out := make([]ota.FileFailure, 0, len(files))
	for name, byAction := range files {
		ff := ota.FileFailure{File: name, Failures: make(map[string]int, len(byAction))}
		devices := map[string]bool{}
		for act, ds := range byAction {
			ff.Failures[act] = len(ds)
			for d := range ds {
				devices[d] = true
			}
		}
		ff.Devices = len(devices)
		out = append(out, ff)
	}
	slices.SortFunc(out, func(a, b ota.FileFailure) int {
		if a.Devices != b.Devices {
			return b.Devices - a.Devices
		}
		return strings.Compare(a.File, b.File)
	})
	if len(out) > ota.MaxFileFailures {
		out = out[:ota.MaxFileFailures]
	}
	return out
}

// compareNames orders version names by semver, names that are not semver
// after those that are, then by text.
func compareNames(a, b string) int {
	va, errA := update.ParseVersion(a)
	vb, errB := update.ParseVersion(b)
	switch {
	case errA == nil && errB == nil:
		if c := va.Compare(vb); c != 0 {
			return c
		}
	case errA == nil:
		return 1
	case errB == nil:
		return -1
	}
	return strings.Compare(a, b)
}

// closeHealth saves what the batching has not saved yet, so a graceful
// stop loses no failure memory.
func (s *Server) closeHealth() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.flushHealth(ctx); err != nil {
		s.log.Error("device health not saved at shutdown", "err", err)
	}
}

// recheckHalt applies the channel's auto-halt policy to what it serves
// now, as after a stats batch; halted reports whether it re-pointed it.
func (s *Server) recheckHalt(ctx context.Context, app, channel string) (halted bool, err error) {
	snap, err := s.snapFor(ctx, app)
	if err != nil {
		return false, err
	}
	av := snap.App(app)
	if av == nil || av.Channels[channel] == nil || av.Channels[channel].Active == nil {
		return false, nil
	}
	active := av.Channels[channel].Active.Version
	if err := s.checkHalt(ctx, snap, healthKey{app, active}); err != nil {
		return false, err
	}
	now := s.snap.Load().App(app)
	return now != nil && now.Channels[channel] != nil && now.Channels[channel].Channel.Active != active, nil
}
