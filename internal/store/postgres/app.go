package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// appTx is one app locked by a write transaction: every write to the app's
// channels, bundles and overrides holds this lock, so what it reads stays
// true until it commits.
type appTx struct {
	t      *txn
	rec    ota.App
	nextID int64 // next_channel_id as read
	dirty  bool  // rec or nextID changed
}

// lockApp locks an existing app; ErrNotFound when there is none.
func lockApp(ctx context.Context, t *txn, appID string) (*appTx, error) {
	if err := checkName("app id", appID); err != nil {
		return nil, err
	}
	a := &appTx{t: t}
	var raw []byte
	err := t.QueryRow(ctx, "SELECT record, next_channel_id FROM apps WHERE id = $1 FOR NO KEY UPDATE", appID).Scan(&raw, &a.nextID)
	if noRows(err) {
		return nil, fmt.Errorf("app %q: %w", appID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("lock app %q: %w", appID, err)
	}
	if err := decode("app "+appID, raw, &a.rec); err != nil {
		return nil, err
	}
	a.rec.ID = appID
	return a, nil
}

// ensureApp locks the app, creating it when missing. Two writers creating
// the same app meet at the insert: the second waits for the first to
// commit, then locks the row it made.
func ensureApp(ctx context.Context, t *txn, appID string, now time.Time) (*appTx, error) {
	a, err := lockApp(ctx, t, appID)
	if err == nil || !isNotFound(err) {
		return a, err
	}
	raw, err := encode("app", ota.App{ID: appID, CreatedAt: now})
	if err != nil {
		return nil, err
	}
	if _, err := t.Exec(ctx, "INSERT INTO apps (id, record) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", appID, raw); err != nil {
		return nil, fmt.Errorf("create app %q: %w", appID, err)
	}
	return lockApp(ctx, t, appID)
}

func (a *appTx) id() string { return a.rec.ID }

// save writes the app's record and channel counter when they changed.
func (a *appTx) save(ctx context.Context) error {
	if !a.dirty {
		return nil
	}
	raw, err := encode("app", a.rec)
	if err != nil {
		return err
	}
	if _, err := a.t.Exec(ctx, "UPDATE apps SET record = $2, next_channel_id = $3 WHERE id = $1", a.id(), raw, a.nextID); err != nil {
		return fmt.Errorf("write app %q: %w", a.id(), err)
	}
	a.dirty = false
	return nil
}

// channel loads a channel; ErrNotFound naming it when missing.
func (a *appTx) channel(ctx context.Context, name string) (ota.Channel, error) {
	if err := checkName("channel", name); err != nil {
		return ota.Channel{}, err
	}
	return loadChannel(ctx, a.t, a.id(), name)
}

func loadChannel(ctx context.Context, q querier, appID, name string) (ota.Channel, error) {
	var raw []byte
	err := q.QueryRow(ctx, "SELECT record FROM channels WHERE app_id = $1 AND name = $2", appID, name).Scan(&raw)
	if noRows(err) {
		return ota.Channel{}, fmt.Errorf("channel %q of app %q: %w", name, appID, store.ErrNotFound)
	}
	if err != nil {
		return ota.Channel{}, fmt.Errorf("read channel %q of app %q: %w", name, appID, err)
	}
	return decodeChannel(appID, raw)
}

// ensureChannel loads a channel, or makes a new one for bundles of kind
// (stored by the caller's putChannel). An existing channel of another kind
// is ErrInvalid.
func (a *appTx) ensureChannel(ctx context.Context, name, kind string, now time.Time) (ota.Channel, error) {
	c, err := a.channel(ctx, name)
	if err == nil {
		if c.Kind != kind {
			return c, fmt.Errorf("channel %q of app %q holds %s bundles, not %s: %w", name, a.id(), c.Kind, kind, store.ErrInvalid)
		}
		return c, nil
	}
	if !isNotFound(err) {
		return c, err
	}
	a.nextID++
	a.dirty = true
	return ota.Channel{
		AppID:     a.id(),
		Name:      name,
		ID:        a.nextID,
		Kind:      kind,
		Policy:    ota.DefaultChannelPolicy(),
		Releases:  []ota.Release{},
		UpdatedAt: now,
	}, nil
}

func (a *appTx) putChannel(ctx context.Context, c ota.Channel) error {
	raw, err := encodeChannel(c)
	if err != nil {
		return err
	}
	_, err = a.t.Exec(ctx, `INSERT INTO channels (app_id, name, kind, record) VALUES ($1, $2, $3, $4)
		ON CONFLICT (app_id, name) DO UPDATE SET record = excluded.record`, a.id(), c.Name, c.Kind, raw)
	if err != nil {
		return fmt.Errorf("write channel %q of app %q: %w", c.Name, a.id(), err)
	}
	return nil
}

// channels lists every channel of the app, by name.
func (a *appTx) channels(ctx context.Context) ([]ota.Channel, error) {
	return listChannelRecords(ctx, a.t, a.id())
}

func listChannelRecords(ctx context.Context, q querier, appID string) ([]ota.Channel, error) {
	rows, err := q.Query(ctx, "SELECT record FROM channels WHERE app_id = $1 ORDER BY name", appID)
	if err != nil {
		return nil, fmt.Errorf("list channels of app %q: %w", appID, err)
	}
	var out []ota.Channel
	var raw []byte
	for rows.Next() {
		if err := rows.Scan(&raw); err != nil {
			rows.Close()
			return nil, err
		}
		c, err := decodeChannel(appID, raw)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list channels of app %q: %w", appID, err)
	}
	return out, nil
}

// bundle loads a bundle record; ErrNotFound naming it when missing.
func (a *appTx) bundle(ctx context.Context, kind, version string) (ota.Bundle, error) {
	return loadBundle(ctx, a.t, a.id(), kind, version)
}

func loadBundle(ctx context.Context, q querier, appID, kind, version string) (ota.Bundle, error) {
	if err := checkKind(kind); err != nil {
		return ota.Bundle{}, err
	}
	if err := checkName("version", version); err != nil {
		return ota.Bundle{}, err
	}
	var raw []byte
	err := q.QueryRow(ctx, "SELECT record FROM bundles WHERE app_id = $1 AND kind = $2 AND version = $3", appID, kind, version).Scan(&raw)
	if noRows(err) {
		return ota.Bundle{}, fmt.Errorf("%s bundle %q of app %q: %w", kind, version, appID, store.ErrNotFound)
	}
	if err != nil {
		return ota.Bundle{}, fmt.Errorf("read %s bundle %q of app %q: %w", kind, version, appID, err)
	}
	return decodeBundle(appID, raw)
}

func (a *appTx) putBundle(ctx context.Context, b ota.Bundle) error {
	raw, err := encodeBundle(b)
	if err != nil {
		return err
	}
	_, err = a.t.Exec(ctx, `INSERT INTO bundles (app_id, kind, version, sha256, deleted, uploaded_at, record)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (app_id, kind, version) DO UPDATE SET sha256 = excluded.sha256, deleted = excluded.deleted, record = excluded.record`,
		a.id(), b.Kind, b.Version, b.SHA256, b.Deleted, b.UploadedAt, raw)
	if err != nil {
		return fmt.Errorf("write %s bundle %q of app %q: %w", b.Kind, b.Version, a.id(), err)
	}
	return nil
}

// wireChannel fills in what a stored channel derives: Public from the
// app's default, the active bundle's record.
func (a *appTx) wireChannel(ctx context.Context, c ota.Channel) (ota.Channel, error) {
	c.AppID = a.id()
	c.Public = c.Name == a.rec.DefaultChannel
	c.ActiveBundle = nil
	if c.Active != "" && c.Active != ota.VersionBuiltin {
		b, err := a.bundle(ctx, c.Kind, c.Active)
		switch {
		case err == nil:
			c.ActiveBundle = &b
		case !isNotFound(err):
			return c, err
		}
	}
	return c, nil
}

// servesVersion reports whether any channel of kind still lists version
// among its releases or points at it.
func (a *appTx) servesVersion(ctx context.Context, kind, version string) (bool, error) {
	chans, err := a.channels(ctx)
	if err != nil {
		return false, err
	}
	for _, c := range chans {
		if c.Kind == kind && (c.Active == version || releaseIndex(c, version) >= 0) {
			return true, nil
		}
	}
	return false, nil
}

// defaultIfFirstWeb makes ch the app's default channel when it is the
// app's first web channel. It must run before ch is stored. An app whose
// default was cleared on purpose keeps none.
func (a *appTx) defaultIfFirstWeb(ctx context.Context, ch ota.Channel) error {
	if ch.Kind != ota.KindWeb || a.rec.DefaultChannel != "" {
		return nil
	}
	var exists bool
	err := a.t.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM channels WHERE app_id = $1 AND kind = $2)", a.id(), ota.KindWeb).Scan(&exists)
	if err != nil {
		return fmt.Errorf("look for web channels of app %q: %w", a.id(), err)
	}
	if exists {
		return nil
	}
	a.rec.DefaultChannel = ch.Name
	a.dirty = true
	return nil
}

// releaseIndex returns the index of the last release of version, or -1.
func releaseIndex(c ota.Channel, version string) int {
	for i := len(c.Releases) - 1; i >= 0; i-- {
		if c.Releases[i].Version == version {
			return i
		}
	}
	return -1
}
