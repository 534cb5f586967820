package bolt

import (
	"fmt"
	"sort"
	"time"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// appTx is one app's bucket within a transaction, with its record decoded.
type appTx struct {
	tx  *bbolt.Tx
	b   *bbolt.Bucket
	rec appRecord
}

// appSubBuckets are created with every app so readers can rely on them.
var appSubBuckets = [][]byte{bChannels, []byte(ota.KindWeb), []byte(ota.KindAPK), bOverrides, bHistory, bCHistory, bStats, bManifests, bSeen}

func appsBucket(tx *bbolt.Tx) (*bbolt.Bucket, error) {
	b := tx.Bucket(bApps)
	if b == nil {
		return nil, fmt.Errorf("bucket %s missing: the file is damaged", bApps)
	}
	return b, nil
}

// loadApp opens an existing app; ErrNotFound when there is none.
func loadApp(tx *bbolt.Tx, appID string) (*appTx, error) {
	if err := checkName("app id", appID); err != nil {
		return nil, err
	}
	apps, err := appsBucket(tx)
	if err != nil {
		return nil, err
	}
	b := apps.Bucket([]byte(appID))
	if b == nil {
		return nil, fmt.Errorf("app %q: %w", appID, store.ErrNotFound)
	}
	a := &appTx{tx: tx, b: b}
	ok, err := get(b, kApp, &a.rec)
	if err != nil {
		return nil, fmt.Errorf("app %q: %w", appID, err)
	}
	if !ok {
		return nil, fmt.Errorf("app %q has no record: the file is damaged", appID)
	}
	return a, nil
}

// ensureApp opens the app, creating it when missing.
func ensureApp(tx *bbolt.Tx, appID string, now time.Time) (*appTx, error) {
	a, err := loadApp(tx, appID)
	if err == nil || !isNotFound(err) {
		return a, err
	}
	apps, err := appsBucket(tx)
	if err != nil {
		return nil, err
	}
	b, err := apps.CreateBucket([]byte(appID))
	if err != nil {
		return nil, fmt.Errorf("create app %q: %w", appID, err)
	}
	for _, name := range appSubBuckets {
		if _, err := b.CreateBucket(name); err != nil {
			return nil, fmt.Errorf("create app %q: bucket %s: %w", appID, name, err)
		}
	}
	a = &appTx{tx: tx, b: b, rec: appRecord{ID: appID, CreatedAt: now}}
	if err := a.save(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *appTx) id() string { return a.rec.ID }

func (a *appTx) save() error {
	if err := put(a.b, kApp, a.rec); err != nil {
		return fmt.Errorf("app %q: %w", a.id(), err)
	}
	return nil
}

// sub returns a sub-bucket every app has.
func (a *appTx) sub(name []byte) (*bbolt.Bucket, error) {
	b := a.b.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("app %q: bucket %s missing: the file is damaged", a.id(), name)
	}
	return b, nil
}

// channel loads a channel; ErrNotFound naming it when missing.
func (a *appTx) channel(name string) (channelRecord, error) {
	var c channelRecord
	if err := checkName("channel", name); err != nil {
		return c, err
	}
	b, err := a.sub(bChannels)
	if err != nil {
		return c, err
	}
	ok, err := get(b, []byte(name), &c)
	if err != nil {
		return c, fmt.Errorf("channel %q of app %q: %w", name, a.id(), err)
	}
	if !ok {
		return c, fmt.Errorf("channel %q of app %q: %w", name, a.id(), store.ErrNotFound)
	}
	return c, nil
}

// ensureChannel loads a channel, or makes a new one for bundles of kind
// (stored by the caller's putChannel). An existing channel of another
// kind is ErrInvalid.
func (a *appTx) ensureChannel(name, kind string, now time.Time) (channelRecord, error) {
	c, err := a.channel(name)
	if err == nil {
		if c.Kind != kind {
			return c, fmt.Errorf("channel %q of app %q holds %s bundles, not %s: %w", name, a.id(), c.Kind, kind, store.ErrInvalid)
		}
		return c, nil
	}
	if !isNotFound(err) {
		return c, err
	}
	b, err := a.sub(bChannels)
	if err != nil {
		return c, err
	}
	id, err := b.NextSequence()
	if err != nil {
		return c, fmt.Errorf("number channel %q of app %q: %w", name, a.id(), err)
	}
	c = channelRecord{
		Name:      name,
		ID:        int64(id),
		Kind:      kind,
		Policy:    policyRecord(ota.DefaultChannelPolicy()),
		UpdatedAt: now,
	}
	return c, nil
}

func (a *appTx) putChannel(c channelRecord) error {
	b, err := a.sub(bChannels)
	if err != nil {
		return err
	}
	if err := put(b, []byte(c.Name), c); err != nil {
		return fmt.Errorf("channel %q of app %q: %w", c.Name, a.id(), err)
	}
	return nil
}

// channels lists every channel of the app, by name.
func (a *appTx) channels() ([]channelRecord, error) {
	b, err := a.sub(bChannels)
	if err != nil {
		return nil, err
	}
	var out []channelRecord
	err = b.ForEach(func(k, _ []byte) error {
		var c channelRecord
		if _, err := get(b, k, &c); err != nil {
			return fmt.Errorf("channel %q of app %q: %w", k, a.id(), err)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// bundle loads a bundle record; ErrNotFound naming it when missing.
func (a *appTx) bundle(kind, version string) (bundleRecord, error) {
	var r bundleRecord
	if err := checkKind(kind); err != nil {
		return r, err
	}
	if err := checkName("version", version); err != nil {
		return r, err
	}
	b, err := a.sub([]byte(kind))
	if err != nil {
		return r, err
	}
	ok, err := get(b, []byte(version), &r)
	if err != nil {
		return r, fmt.Errorf("%s bundle %q of app %q: %w", kind, version, a.id(), err)
	}
	if !ok {
		return r, fmt.Errorf("%s bundle %q of app %q: %w", kind, version, a.id(), store.ErrNotFound)
	}
	return r, nil
}

func (a *appTx) putBundle(r bundleRecord) error {
	b, err := a.sub([]byte(r.Kind))
	if err != nil {
		return err
	}
	if err := put(b, []byte(r.Version), r); err != nil {
		return fmt.Errorf("%s bundle %q of app %q: %w", r.Kind, r.Version, a.id(), err)
	}
	return nil
}

// bundles lists the app's bundles of one kind, by version name.
func (a *appTx) bundles(kind string) ([]bundleRecord, error) {
	b, err := a.sub([]byte(kind))
	if err != nil {
		return nil, err
	}
	var out []bundleRecord
	err = b.ForEach(func(k, _ []byte) error {
		var r bundleRecord
		if _, err := get(b, k, &r); err != nil {
			return fmt.Errorf("%s bundle %q of app %q: %w", kind, k, a.id(), err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// wireChannel builds the API view of a channel: Public from the app's
// default, the active bundle's record, releases oldest first.
func (a *appTx) wireChannel(c channelRecord) (ota.Channel, error) {
	out := ota.Channel{
		AppID:     a.id(),
		Name:      c.Name,
		ID:        c.ID,
		Kind:      c.Kind,
		Public:    c.Name == a.rec.DefaultChannel,
		Active:    c.Active,
		Policy:    ota.ChannelPolicy(c.Policy),
		Releases:  make([]ota.Release, len(c.Releases)),
		UpdatedAt: c.UpdatedAt,
	}
	for i, r := range c.Releases {
		out.Releases[i] = ota.Release(r)
	}
	if c.Rollout != nil {
		r := c.Rollout.wire()
		out.Rollout = &r
	}
	if c.Active != "" && c.Active != ota.VersionBuiltin {
		r, err := a.bundle(c.Kind, c.Active)
		switch {
		case err == nil:
			b := r.wire(a.id())
			out.ActiveBundle = &b
		case !isNotFound(err):
			return out, err
		}
	}
	return out, nil
}

// servesVersion reports whether any channel of kind still lists version
// among its releases or points at it.
func (a *appTx) servesVersion(kind, version string) (bool, error) {
	chans, err := a.channels()
	if err != nil {
		return false, err
	}
	for _, c := range chans {
		if c.Kind != kind {
			continue
		}
		if c.Active == version || c.releaseIndex(version) >= 0 {
			return true, nil
		}
	}
	return false, nil
}

// sortBundles orders bundles by upload time, then kind and version, so
// listings read as a timeline.
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
