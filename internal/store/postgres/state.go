package postgres

import (
	"context"
	"fmt"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// LoadState reads what the device endpoints need for every app, in one
// snapshot. It reads apps, channels, web bundles and overrides only,
// never the history or the stats.
func (s *Store) LoadState(ctx context.Context) (store.State, error) {
	st := emptyState()
	err := s.read(ctx, func(db querier) error {
		st = emptyState()
		apps, err := listApps(ctx, db)
		if err != nil {
			return err
		}
		for _, a := range apps {
			if err := addState(ctx, db, a, &st); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.State{}, fmt.Errorf("load state: %w", dbErr(ctx, err))
	}
	return st, nil
}

// LoadAppState reads the device-facing state of one app, in one snapshot;
// ErrNotFound when the app does not exist.
func (s *Store) LoadAppState(ctx context.Context, appID string) (store.State, error) {
	st := emptyState()
	err := s.read(ctx, func(db querier) error {
		st = emptyState()
		a, err := getApp(ctx, db, appID)
		if err != nil {
			return err
		}
		return addState(ctx, db, a, &st)
	})
	if err != nil {
		return store.State{}, fmt.Errorf("load state of %s: %w", appID, dbErr(ctx, err))
	}
	return st, nil
}

// listApps reads every app, by id.
func listApps(ctx context.Context, db querier) ([]ota.App, error) {
	rows, err := db.Query(ctx, "SELECT id, record FROM apps ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ota.App{}
	for rows.Next() {
		var (
			id  string
			raw []byte
			a   ota.App
		)
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, err
		}
		if err := decode("app "+id, raw, &a); err != nil {
			return nil, err
		}
		a.ID = id
		out = append(out, a)
	}
	return out, rows.Err()
}

func emptyState() store.State {
	return store.State{
		Apps:      []ota.App{},
		Channels:  []ota.Channel{},
		Bundles:   []ota.Bundle{},
		Overrides: []store.DeviceOverride{},
		Manifests: []store.Manifest{},
	}
}

// addState appends the app's device-facing records to st.
func addState(ctx context.Context, db querier, a ota.App, st *store.State) error {
	st.Apps = append(st.Apps, a)
	chans, err := wireChannels(ctx, db, a, "")
	if err != nil {
		return err
	}
	st.Channels = append(st.Channels, chans...)
	// Only the fields the device endpoints use (see store.State), taken
	// out of the record by the database.
	rows, err := db.Query(ctx, `SELECT version, sha256, coalesce((record->>'size')::bigint, 0),
			coalesce(record->>'min_native', ''), coalesce(record->>'max_native', ''),
			record->'encryption'->>'session_key', record->'encryption'->>'encrypted_checksum', record->'encryption'->>'key_id',
			coalesce(record->>'signature', ''), coalesce((record->>'files')::int, 0)
		FROM bundles WHERE app_id = $1 AND kind = $2 AND NOT deleted ORDER BY version`, a.ID, ota.KindWeb)
	if err != nil {
		return err
	}
	for rows.Next() {
		b := ota.Bundle{AppID: a.ID, Kind: ota.KindWeb}
		var key, sum, id *string
		if err := rows.Scan(&b.Version, &b.SHA256, &b.Size, &b.MinNative, &b.MaxNative, &key, &sum, &id, &b.Signature, &b.Files); err != nil {
			rows.Close()
			return err
		}
		if key != nil || sum != nil || id != nil {
			b.Encryption = &ota.BundleEncryption{SessionKey: deref(key), EncryptedChecksum: deref(sum), KeyID: deref(id)}
		}
		st.Bundles = append(st.Bundles, b)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := addStateManifests(ctx, db, a.ID, chans, st); err != nil {
		return err
	}
	ovs, err := listOverrides(ctx, db, a.ID)
	if err != nil {
		return err
	}
	st.Overrides = append(st.Overrides, ovs...)
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// ReferencedBlobs returns the SHA-256 of every bundle not marked deleted,
// of every app and kind, the file forms their manifests name and the
// blobs of every delta file record. Blobs outside it may be collected.
func (s *Store) ReferencedBlobs(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	err := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := s.db().Query(ctx, "SELECT DISTINCT sha256 FROM bundles WHERE NOT deleted")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var sum string
			if err := rows.Scan(&sum); err != nil {
				return err
			}
			out[sum] = true
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return addDeltaReferences(ctx, s.db(), out)
	}()
	if err != nil {
		return nil, fmt.Errorf("list referenced blobs: %w", dbErr(ctx, err))
	}
	return out, nil
}
