package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Publish records a bundle and makes it active on the channel, with its
// event, in one transaction. See store.Store for the contract.
func (s *Store) Publish(ctx context.Context, in store.PublishInput) (ota.UploadResult, error) {
	var res ota.UploadResult
	bn := in.Bundle
	if err := checkKind(bn.Kind); err != nil {
		return res, err
	}
	for _, f := range []struct{ what, v string }{
		{"app id", bn.AppID}, {"version", bn.Version}, {"channel", in.Channel}, {"sha256", bn.SHA256},
	} {
		if err := checkName(f.what, f.v); err != nil {
			return res, fmt.Errorf("publish: %w", err)
		}
	}
	if in.Rollout < 0 || in.Rollout > 100 {
		return res, fmt.Errorf("publish: rollout %d%% is not between 0 and 100: %w", in.Rollout, store.ErrInvalid)
	}
	if bn.Version == ota.VersionBuiltin {
		return res, fmt.Errorf("publish: version %q is reserved for the bundle shipped in the app: %w", bn.Version, store.ErrInvalid)
	}
	now := norm(in.Time)
	err := s.write(ctx, func(t *txn) error {
		a, err := ensureApp(ctx, t, bn.AppID, now)
		if err != nil {
			return err
		}
		ch, err := a.ensureChannel(ctx, in.Channel, bn.Kind, now)
		if err != nil {
			return err
		}
		prev := ch.Active
		rec, err := a.bundle(ctx, bn.Kind, bn.Version)
		created := false
		switch {
		case err == nil:
			if !strings.EqualFold(rec.SHA256, bn.SHA256) {
				return fmt.Errorf("version %s is already stored with sha256 %s…, this upload has %s…; publish it under a new version: %w",
					bn.Version, short(rec.SHA256), short(bn.SHA256), store.ErrConflict)
			}
			dirty := false
			switch sig := bn.Signature; {
			case sig == "" || sig == rec.Signature:
			case rec.Signature == "":
				// Signing what was uploaded unsigned changes no byte.
				rec.Signature, dirty = sig, true
			default:
				return fmt.Errorf("version %s is already stored with another signature (signed with another key?); publish it under a new version: %w",
					bn.Version, store.ErrConflict)
			}
			if rec.Deleted {
				// The same bytes bring a deleted version back, with the
				// manifest of this upload (the old one went with it).
				rec.Deleted, rec.Files, rec.ManifestSignature, dirty = false, 0, "", true
			}
			if rec.Files == 0 && len(in.Manifest) > 0 {
				if rec.Files, err = a.putManifest(ctx, bn.Version, in.Manifest); err != nil {
					return err
				}
				// The manifest's signature goes with its files.
				rec.ManifestSignature, dirty = bn.ManifestSignature, true
			}
			if dirty {
				if err := a.putBundle(ctx, rec); err != nil {
					return err
				}
			}
		case isNotFound(err):
			// The whole input is kept, so a field added to ota.Bundle is
			// stored without this code knowing it.
			created = true
			rec = bn
			rec.AppID, rec.URL, rec.Deleted = a.id(), "", false
			rec.SHA256 = strings.ToLower(bn.SHA256)
			rec.UploadedAt = now
			if rec.UploadedBy == "" {
				rec.UploadedBy = in.Actor
			}
			rec.Files = 0
			if len(in.Manifest) > 0 {
				if rec.Files, err = a.putManifest(ctx, bn.Version, in.Manifest); err != nil {
					return err
				}
			}
			if err := a.putBundle(ctx, rec); err != nil {
				return err
			}
		default:
			return err
		}

		evType := ota.EventUpload
		if !created {
			evType = ota.EventActivate
		}
		changed := false
		if releaseIndex(ch, bn.Version) < 0 {
			ch.Releases = append(ch.Releases, ota.Release{Version: bn.Version, DeployedAt: now})
			changed = true
		}
		note := in.Note
		if ch.Active != bn.Version {
			ch.Active = bn.Version
			ch.Rollout = nil
			if in.Rollout > 0 && in.Rollout < 100 {
				ch.Rollout = &ota.Rollout{Target: bn.Version, Previous: prev, Percent: in.Rollout, StartedAt: now, UpdatedAt: now}
				note = strings.TrimPrefix(note+fmt.Sprintf("; rollout %d%%", in.Rollout), "; ")
			}
			changed = true
		}
		if err := a.defaultIfFirstWeb(ctx, ch); err != nil {
			return err
		}
		if changed {
			ch.UpdatedAt = now
			if err := a.putChannel(ctx, ch); err != nil {
				return err
			}
			if err := a.appendEvent(ota.Event{
				Time: now, Actor: in.Actor, Type: evType, Channel: in.Channel,
				Version: bn.Version, From: prev, To: bn.Version, SHA256: rec.SHA256, Note: note,
			}); err != nil {
				return err
			}
		}
		if err := a.save(ctx); err != nil {
			return err
		}
		res = ota.UploadResult{Bundle: rec, Channel: in.Channel, Created: created, Previous: prev}
		return nil
	})
	if err != nil {
		return ota.UploadResult{}, fmt.Errorf("publish %s %s of %s to %s: %w", bn.Kind, bn.Version, bn.AppID, in.Channel, err)
	}
	return res, nil
}

// Rollback re-points the channel at the release before the active one, or
// at to. Releases stay as they are: they are the deploy history.
func (s *Store) Rollback(ctx context.Context, appID, channel, to, actor string, now time.Time) (ota.ChannelChange, error) {
	now = norm(now)
	var res ota.ChannelChange
	err := s.write(ctx, func(t *txn) error {
		res = ota.ChannelChange{AppID: appID, Channel: channel}
		target := to
		a, err := lockApp(ctx, t, appID)
		if err != nil {
			return err
		}
		ch, err := a.channel(ctx, channel)
		if err != nil {
			return err
		}
		res.From = ch.Active
		var sum string
		switch {
		case target == "":
			if target, err = previousRelease(ch); err != nil {
				return err
			}
		case target == ota.VersionBuiltin:
			if ch.Kind != ota.KindWeb {
				return fmt.Errorf("channel %q of app %q holds %s bundles; only web channels can fall back to %q: %w",
					channel, appID, ch.Kind, ota.VersionBuiltin, store.ErrInvalid)
			}
		}
		if target != ota.VersionBuiltin {
			b, err := a.bundle(ctx, ch.Kind, target)
			if err != nil {
				return err
			}
			if b.Deleted {
				return fmt.Errorf("%s bundle %q of app %q was deleted; publish it again first: %w", ch.Kind, target, appID, store.ErrNotFound)
			}
			sum = b.SHA256
		}
		res.To = target
		if ch.Active == target {
			return nil // already there: a retried rollback changes nothing
		}
		ch.Active = target
		ch.Rollout = nil // a re-pointed channel serves its new version to every device
		ch.UpdatedAt = now
		if err := a.putChannel(ctx, ch); err != nil {
			return err
		}
		return a.appendEvent(ota.Event{
			Time: now, Actor: actor, Type: ota.EventRollback, Channel: channel,
			Version: target, From: res.From, To: target, SHA256: sum,
		})
	})
	if err != nil {
		return ota.ChannelChange{}, fmt.Errorf("roll back %s of %s: %w", channel, appID, err)
	}
	return res, nil
}

// previousRelease is the release deployed before the active one, skipping
// re-deploys of the active version. When the channel serves builtin,
// nothing, or a version not among its releases, it is the last release.
func previousRelease(ch ota.Channel) (string, error) {
	i := len(ch.Releases)
	if ch.Active != "" && ch.Active != ota.VersionBuiltin {
		if j := releaseIndex(ch, ch.Active); j >= 0 {
			i = j
		}
	}
	for i--; i >= 0; i-- {
		if v := ch.Releases[i].Version; v != ch.Active {
			return v, nil
		}
	}
	if ch.Active == "" {
		return "", fmt.Errorf("it has no releases: %w", store.ErrNoPrevious)
	}
	return "", fmt.Errorf("nothing was released before %s: %w", ch.Active, store.ErrNoPrevious)
}

// Promote makes version, or what channel from serves, active on channel to
// as a new release there, creating the channel when missing.
func (s *Store) Promote(ctx context.Context, appID, version, from, to, actor string, now time.Time) (ota.ChannelChange, error) {
	now = norm(now)
	res := ota.ChannelChange{AppID: appID, Channel: to}
	if from == to {
		return res, fmt.Errorf("promote %s of %s: source and target are the same channel: %w", to, appID, store.ErrInvalid)
	}
	if err := checkName("target channel", to); err != nil {
		return res, fmt.Errorf("promote to %s of %s: %w", to, appID, err)
	}
	err := s.write(ctx, func(t *txn) error {
		res = ota.ChannelChange{AppID: appID, Channel: to}
		v := version
		a, err := lockApp(ctx, t, appID)
		if err != nil {
			return err
		}
		src, err := a.channel(ctx, from)
		if err != nil {
			return err
		}
		if v == "" {
			v = src.Active
			if v == "" || v == ota.VersionBuiltin {
				return fmt.Errorf("channel %q of app %q serves no bundle to promote; name a version: %w", from, appID, store.ErrInvalid)
			}
		}
		b, err := a.bundle(ctx, src.Kind, v)
		if err != nil {
			return err
		}
		if b.Deleted {
			return fmt.Errorf("%s bundle %q of app %q was deleted; publish it again first: %w", b.Kind, v, appID, store.ErrNotFound)
		}
		dst, err := a.ensureChannel(ctx, to, b.Kind, now)
		if err != nil {
			return err
		}
		res.From, res.To = dst.Active, v
		if dst.Active == v {
			return nil // already served there: a retried promote changes nothing
		}
		dst.Releases = append(dst.Releases, ota.Release{Version: v, DeployedAt: now})
		dst.Active = v
		dst.Rollout = nil
		dst.UpdatedAt = now
		if err := a.putChannel(ctx, dst); err != nil {
			return err
		}
		if err := a.save(ctx); err != nil {
			return err
		}
		return a.appendEvent(ota.Event{
			Time: now, Actor: actor, Type: ota.EventPromote, Channel: to,
			Version: v, From: res.From, To: v, SHA256: b.SHA256, Note: "from " + from,
		})
	})
	if err != nil {
		return ota.ChannelChange{}, fmt.Errorf("promote %s to %s of %s: %w", orActive(version, from), to, appID, err)
	}
	return res, nil
}

func orActive(version, from string) string {
	if version != "" {
		return version
	}
	return "what " + from + " serves"
}

// DeleteRelease removes every release of version from the channel. An
// active version gives way to the last remaining release, or to nothing;
// a bundle no channel lists or serves any more is marked deleted, and its
// name stays reserved.
func (s *Store) DeleteRelease(ctx context.Context, appID, channel, version, actor string, now time.Time) (ota.ChannelChange, error) {
	now = norm(now)
	var res ota.ChannelChange
	err := s.write(ctx, func(t *txn) error {
		res = ota.ChannelChange{AppID: appID, Channel: channel}
		a, err := lockApp(ctx, t, appID)
		if err != nil {
			return err
		}
		ch, err := a.channel(ctx, channel)
		if err != nil {
			return err
		}
		if releaseIndex(ch, version) < 0 {
			return fmt.Errorf("version %q is not released on channel %q of app %q: %w", version, channel, appID, store.ErrNotFound)
		}
		kept := []ota.Release{}
		for _, r := range ch.Releases {
			if r.Version != version {
				kept = append(kept, r)
			}
		}
		ch.Releases = kept
		res.From = ch.Active
		if ch.Active == version {
			ch.Rollout = nil
			ch.Active = ""
			if n := len(kept); n > 0 {
				ch.Active = kept[n-1].Version
			}
		}
		res.To = ch.Active
		ch.UpdatedAt = now
		if err := a.putChannel(ctx, ch); err != nil {
			return err
		}
		b, err := a.bundle(ctx, ch.Kind, version)
		if err != nil {
			return err
		}
		used, err := a.servesVersion(ctx, ch.Kind, version)
		if err != nil {
			return err
		}
		note := ""
		if !used {
			b.Deleted = true
			if b.Files > 0 {
				// Its files may be collected now; a later publish of the
				// same bytes brings its own manifest.
				if err := a.dropManifest(ctx, version); err != nil {
					return err
				}
				b.Files = 0
			}
			if err := a.putBundle(ctx, b); err != nil {
				return err
			}
			note = "bundle no longer in any channel"
		}
		return a.appendEvent(ota.Event{
			Time: now, Actor: actor, Type: ota.EventDelete, Channel: channel,
			Version: version, From: res.From, To: res.To, SHA256: b.SHA256, Note: note,
		})
	})
	if err != nil {
		return ota.ChannelChange{}, fmt.Errorf("delete %s from %s of %s: %w", version, channel, appID, err)
	}
	return res, nil
}

// UpdateChannel applies the non-nil fields of patch. A policy change is a
// policy event; a change of the app's default channel a default_channel
// event. A patch that changes nothing records nothing.
func (s *Store) UpdateChannel(ctx context.Context, appID, channel string, patch ota.ChannelPolicyPatch, actor string, now time.Time) (ota.Channel, error) {
	now = norm(now)
	if d := patch.DisableAutoUpdate; d != nil {
		switch *d {
		case ota.DisableNone, ota.DisableMajor, ota.DisableMinor, ota.DisablePatch, ota.DisableVersionNumber:
		default:
			return ota.Channel{}, fmt.Errorf("update channel %s of %s: disable_auto_update %q is not one of none, major, minor, patch, version_number: %w",
				channel, appID, *d, store.ErrInvalid)
		}
	}
	if v := patch.HaltOnFailureRate; v != nil && !(*v > 0 && *v <= 1) {
		return ota.Channel{}, fmt.Errorf("update channel %s of %s: halt_on_failure_rate %g is not in (0, 1], e.g. 0.2 for 20%%: %w",
			channel, appID, *v, store.ErrInvalid)
	}
	if err := store.CheckStalledPatch(patch); err != nil {
		return ota.Channel{}, fmt.Errorf("update channel %s of %s: %w", channel, appID, err)
	}
	if v := patch.MinDevices; v != nil && *v < 1 {
		return ota.Channel{}, fmt.Errorf("update channel %s of %s: min_devices %d must be at least 1: %w", channel, appID, *v, store.ErrInvalid)
	}
	var out ota.Channel
	err := s.write(ctx, func(t *txn) error {
		a, err := lockApp(ctx, t, appID)
		if err != nil {
			return err
		}
		ch, err := a.channel(ctx, channel)
		if err != nil {
			return err
		}
		changes := applyPatch(&ch.Policy, patch)
		if len(changes) > 0 {
			ch.UpdatedAt = now
			if err := a.putChannel(ctx, ch); err != nil {
				return err
			}
			if err := a.appendEvent(ota.Event{
				Time: now, Actor: actor, Type: ota.EventPolicy, Channel: channel, Note: strings.Join(changes, ", "),
			}); err != nil {
				return err
			}
		}
		if patch.Default != nil {
			old := a.rec.DefaultChannel
			switch {
			case *patch.Default && ch.Kind != ota.KindWeb:
				return fmt.Errorf("channel %q of app %q holds %s bundles; only a web channel can be the default: %w",
					channel, appID, ch.Kind, store.ErrInvalid)
			case *patch.Default:
				a.rec.DefaultChannel = channel
			case old == channel:
				a.rec.DefaultChannel = "" // devices naming no channel get nothing until another is chosen
			}
			if a.rec.DefaultChannel != old {
				a.dirty = true
				if err := a.save(ctx); err != nil {
					return err
				}
				if err := a.appendEvent(ota.Event{
					Time: now, Actor: actor, Type: ota.EventDefault, Channel: channel, From: old, To: a.rec.DefaultChannel,
				}); err != nil {
					return err
				}
			}
		}
		out, err = a.wireChannel(ctx, ch)
		return err
	})
	if err != nil {
		return ota.Channel{}, fmt.Errorf("update channel %s of %s: %w", channel, appID, err)
	}
	return out, nil
}

// applyPatch sets the patch's non-nil fields that differ and describes each
// change as name=value.
func applyPatch(p *ota.ChannelPolicy, patch ota.ChannelPolicyPatch) []string {
	var changes []string
	flag := func(name string, dst *bool, v *bool) {
		if v != nil && *dst != *v {
			*dst = *v
			changes = append(changes, fmt.Sprintf("%s=%t", name, *v))
		}
	}
	flag("allow_self_set", &p.AllowSelfSet, patch.AllowSelfSet)
	flag("ios", &p.IOS, patch.IOS)
	flag("android", &p.Android, patch.Android)
	flag("electron", &p.Electron, patch.Electron)
	if v := patch.DisableAutoUpdate; v != nil && p.DisableAutoUpdate != *v {
		p.DisableAutoUpdate = *v
		changes = append(changes, "disable_auto_update="+*v)
	}
	flag("disable_auto_update_under_native", &p.DisableAutoUpdateUnderNative, patch.DisableAutoUpdateUnderNative)
	flag("allow_prod", &p.AllowProd, patch.AllowProd)
	flag("allow_dev", &p.AllowDev, patch.AllowDev)
	flag("allow_device", &p.AllowDevice, patch.AllowDevice)
	flag("allow_emulator", &p.AllowEmulator, patch.AllowEmulator)
	flag("auto_halt", &p.AutoHalt, patch.AutoHalt)
	if v := patch.HaltOnFailureRate; v != nil && p.HaltOnFailureRate != *v {
		p.HaltOnFailureRate = *v
		changes = append(changes, fmt.Sprintf("halt_on_failure_rate=%g", *v))
	}
	if v := patch.MinDevices; v != nil && p.MinDevices != *v {
		p.MinDevices = *v
		changes = append(changes, fmt.Sprintf("min_devices=%d", *v))
	}
	flag("protected", &p.Protected, patch.Protected)
	if v := patch.StalledWindowSeconds; v != nil && p.StalledWindowSeconds != *v {
		p.StalledWindowSeconds = *v
		changes = append(changes, fmt.Sprintf("stalled_window_seconds=%d", *v))
	}
	if v := patch.StalledPolls; v != nil && p.StalledPolls != *v {
		p.StalledPolls = *v
		changes = append(changes, fmt.Sprintf("stalled_polls=%d", *v))
	}
	flag("ignore_stalled", &p.IgnoreStalled, patch.IgnoreStalled)
	return changes
}

// ListApps lists every app by id.
func (s *Store) ListApps(ctx context.Context) ([]ota.App, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := listApps(ctx, s.db())
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", dbErr(ctx, err))
	}
	return out, nil
}

// GetApp returns one app.
func (s *Store) GetApp(ctx context.Context, appID string) (ota.App, error) {
	a, err := getApp(ctx, s.db(), appID)
	if err != nil {
		return ota.App{}, fmt.Errorf("get app: %w", dbErr(ctx, err))
	}
	return a, nil
}

func getApp(ctx context.Context, db querier, appID string) (ota.App, error) {
	var a ota.App
	if err := ctx.Err(); err != nil {
		return a, err
	}
	if err := checkName("app id", appID); err != nil {
		return a, err
	}
	var raw []byte
	err := db.QueryRow(ctx, "SELECT record FROM apps WHERE id = $1", appID).Scan(&raw)
	if noRows(err) {
		return a, fmt.Errorf("app %q: %w", appID, store.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("read app %q: %w", appID, err)
	}
	if err := decode("app "+appID, raw, &a); err != nil {
		return a, err
	}
	a.ID = appID
	return a, nil
}

// channelsQuery reads channels with their active bundles in one statement.
const channelsQuery = `SELECT c.record, b.record FROM channels c
	LEFT JOIN bundles b ON b.app_id = c.app_id AND b.kind = c.kind AND b.version = c.record->>'active'
	WHERE c.app_id = $1`

// wireChannels reads the channels of app (all of them, or the one named)
// as the API shows them.
func wireChannels(ctx context.Context, db querier, app ota.App, name string) ([]ota.Channel, error) {
	sql, args := channelsQuery+" ORDER BY c.name", []any{app.ID}
	if name != "" {
		sql, args = channelsQuery+" AND c.name = $2", []any{app.ID, name}
	}
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ota.Channel{}
	for rows.Next() {
		var craw, braw []byte
		if err := rows.Scan(&craw, &braw); err != nil {
			return nil, err
		}
		c, err := decodeChannel(app.ID, craw)
		if err != nil {
			return nil, err
		}
		c.Public = c.Name == app.DefaultChannel
		if braw != nil && c.Active != ota.VersionBuiltin {
			b, err := decodeBundle(app.ID, braw)
			if err != nil {
				return nil, err
			}
			c.ActiveBundle = &b
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ListChannels lists an app's channels by name.
func (s *Store) ListChannels(ctx context.Context, appID string) ([]ota.Channel, error) {
	var out []ota.Channel
	err := s.read(ctx, func(db querier) error {
		a, err := getApp(ctx, db, appID)
		if err != nil {
			return err
		}
		out, err = wireChannels(ctx, db, a, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", dbErr(ctx, err))
	}
	return out, nil
}

// GetChannel returns one channel with its active bundle.
func (s *Store) GetChannel(ctx context.Context, appID, channel string) (ota.Channel, error) {
	var out ota.Channel
	err := s.read(ctx, func(db querier) error {
		a, err := getApp(ctx, db, appID)
		if err != nil {
			return err
		}
		if err := checkName("channel", channel); err != nil {
			return err
		}
		cs, err := wireChannels(ctx, db, a, channel)
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			return fmt.Errorf("channel %q of app %q: %w", channel, appID, store.ErrNotFound)
		}
		out = cs[0]
		return nil
	})
	if err != nil {
		return ota.Channel{}, fmt.Errorf("get channel: %w", dbErr(ctx, err))
	}
	return out, nil
}

// ListBundles lists every bundle of an app, deleted ones included, oldest
// upload first.
func (s *Store) ListBundles(ctx context.Context, appID string) ([]ota.Bundle, error) {
	out := []ota.Bundle{}
	err := s.read(ctx, func(db querier) error {
		if err := appExists(ctx, db, appID); err != nil {
			return err
		}
		rows, err := db.Query(ctx, "SELECT record FROM bundles WHERE app_id = $1", appID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var raw []byte
			if err := rows.Scan(&raw); err != nil {
				return err
			}
			b, err := decodeBundle(appID, raw)
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list bundles: %w", dbErr(ctx, err))
	}
	sortBundles(out)
	return out, nil
}

// GetBundle returns one bundle record, deleted or not.
func (s *Store) GetBundle(ctx context.Context, appID, kind, version string) (ota.Bundle, error) {
	var out ota.Bundle
	err := s.read(ctx, func(db querier) error {
		if err := appExists(ctx, db, appID); err != nil {
			return err
		}
		var err error
		out, err = loadBundle(ctx, db, appID, kind, version)
		return err
	})
	if err != nil {
		return ota.Bundle{}, fmt.Errorf("get bundle: %w", dbErr(ctx, err))
	}
	return out, nil
}

// sortBundles orders bundles by upload time, then kind and version, as
// the embedded store lists them.
func sortBundles(bs []ota.Bundle) {
	sort.SliceStable(bs, func(i, j int) bool {
		if !bs[i].UploadedAt.Equal(bs[j].UploadedAt) {
			return bs[i].UploadedAt.Before(bs[j].UploadedAt)
		}
		if bs[i].Kind != bs[j].Kind {
			return bs[i].Kind < bs[j].Kind
		}
		return bs[i].Version < bs[j].Version
	})
}
