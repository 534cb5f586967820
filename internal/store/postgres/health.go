package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otaship/ota/internal/store"
)

// SaveHealth stores version health records in one transaction, replacing
// earlier records of the same app and version. A record is one row per
// device and outcome (health_devices), so that replicas can later add
// their devices to a version's count instead of replacing each other's.
func (s *Store) SaveHealth(ctx context.Context, hs []store.VersionHealth) error {
	if len(hs) == 0 {
		return nil
	}
	apps := make([]string, 0, len(hs))
	for _, h := range hs {
		apps = append(apps, h.AppID)
	}
	err := s.write(ctx, func(t *txn) error {
		known, err := knownApps(ctx, t, apps)
		if err != nil {
			return err
		}
		for _, h := range hs {
			if checkName("app id", h.AppID) != nil || checkName("version", h.Version) != nil {
				continue
			}
			if len(h.Installed) == 0 && len(h.Failed) == 0 {
				// Also when the app is gone: its records go with it.
				if _, err := t.Exec(ctx, "DELETE FROM health_versions WHERE app_id = $1 AND version = $2", h.AppID, h.Version); err != nil {
					return fmt.Errorf("remove health of %s %s: %w", h.AppID, h.Version, err)
				}
				continue
			}
			if !known[h.AppID] {
				continue
			}
			if err := saveVersionHealth(ctx, t, h); err != nil {
				return fmt.Errorf("health of %s %s: %w", h.AppID, h.Version, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save health of %d versions: %w", len(hs), err)
	}
	return nil
}

func saveVersionHealth(ctx context.Context, t *txn, h store.VersionHealth) error {
	// Device ids come from devices; one PostgreSQL cannot store as text
	// would fail every later save of the batch, so it is left out.
	installed := make([]string, 0, len(h.Installed))
	for _, d := range h.Installed {
		if storable(d) {
			installed = append(installed, d)
		}
	}
	fails := make(map[string][]string, len(h.Failed))
	for d, actions := range h.Failed {
		if !storable(d) {
			continue
		}
		kept := make([]string, 0, len(actions))
		for _, a := range actions {
			if storable(a) {
				kept = append(kept, a)
			}
		}
		fails[d] = kept
	}
	failed, err := json.Marshal(fails)
	if err != nil {
		return err
	}
	if _, err := t.Exec(ctx, `INSERT INTO health_versions (app_id, version, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (app_id, version) DO UPDATE SET updated_at = excluded.updated_at`,
		h.AppID, h.Version, h.UpdatedAt.UTC()); err != nil {
		return err
	}
	if _, err := t.Exec(ctx, "DELETE FROM health_devices WHERE app_id = $1 AND version = $2", h.AppID, h.Version); err != nil {
		return err
	}
	if _, err := t.Exec(ctx, `INSERT INTO health_devices (app_id, version, failed, device_id, pos)
		SELECT $1, $2, false, d, o FROM unnest($3::text[]) WITH ORDINALITY AS u (d, o)
		ON CONFLICT DO NOTHING`, h.AppID, h.Version, installed); err != nil {
		return err
	}
	if len(fails) > 0 {
		if _, err := t.Exec(ctx, `INSERT INTO health_devices (app_id, version, failed, device_id, actions, pos)
			SELECT $1, $2, true, key,
				CASE WHEN jsonb_typeof(value) = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(value)) ELSE '{}' END, 0
			FROM jsonb_each($3::jsonb)`,
			h.AppID, h.Version, failed); err != nil {
			return err
		}
	}
	return nil
}

// storable reports whether PostgreSQL can keep s as text.
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// knownApps is the subset of ids that are apps.
func knownApps(ctx context.Context, db querier, ids []string) (map[string]bool, error) {
	rows, err := db.Query(ctx, "SELECT id FROM apps WHERE id = ANY($1)", ids)
	if err != nil {
		return nil, fmt.Errorf("look up apps: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

// LoadHealth reads every stored version health record, ordered by app and
// version.
func (s *Store) LoadHealth(ctx context.Context) ([]store.VersionHealth, error) {
	var out []store.VersionHealth
	err := s.read(ctx, func(db querier) error {
		out = nil
		idx := map[[2]string]int{}
		rows, err := db.Query(ctx, "SELECT app_id, version, updated_at FROM health_versions ORDER BY app_id, version")
		if err != nil {
			return err
		}
		for rows.Next() {
			var h store.VersionHealth
			var at time.Time
			if err := rows.Scan(&h.AppID, &h.Version, &at); err != nil {
				rows.Close()
				return err
			}
			h.UpdatedAt = at.UTC()
			idx[[2]string{h.AppID, h.Version}] = len(out)
			out = append(out, h)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = db.Query(ctx, "SELECT app_id, version, failed, device_id, actions FROM health_devices ORDER BY app_id, version, failed, pos, device_id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				app, version, dev string
				failed            bool
				actions           []string
			)
			if err := rows.Scan(&app, &version, &failed, &dev, &actions); err != nil {
				return err
			}
			i, ok := idx[[2]string{app, version}]
			if !ok {
				continue
			}
			h := &out[i]
			if !failed {
				h.Installed = append(h.Installed, dev)
				continue
			}
			if h.Failed == nil {
				h.Failed = map[string][]string{}
			}
			h.Failed[dev] = actions
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("load health: %w", dbErr(ctx, err))
	}
	return out, nil
}
