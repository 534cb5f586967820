package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Stats query limits, as in the embedded store.
const (
	defaultStatsLimit = 1000
	maxStatsLimit     = 10000
)

// SetOverride pins a device of an app to an existing channel. Device ids
// are matched without regard to case. A device's own request does not
// replace an admin's pin (ErrConflict).
func (s *Store) SetOverride(ctx context.Context, o store.DeviceOverride, actor string, now time.Time) error {
	now = norm(now)
	if err := checkName("device id", o.DeviceID); err != nil {
		return fmt.Errorf("set device override: %w", err)
	}
	dev := strings.ToLower(o.DeviceID)
	if err := checkName("device id", dev); err != nil {
		return fmt.Errorf("set device override: %w", err)
	}
	err := s.write(ctx, func(t *txn) error {
		a, err := lockApp(ctx, t, o.AppID)
		if err != nil {
			return err
		}
		if _, err := a.channel(ctx, o.Channel); err != nil {
			return err
		}
		var (
			old      string
			oldOwner bool // by_device
		)
		err = t.QueryRow(ctx, "SELECT channel, by_device FROM overrides WHERE app_id = $1 AND device_id = $2", o.AppID, dev).Scan(&old, &oldOwner)
		switch {
		case noRows(err):
		case err != nil:
			return fmt.Errorf("read override: %w", err)
		case o.ByDevice && !oldOwner:
			return fmt.Errorf("device %s is pinned to %s by an admin: %w", dev, old, store.ErrConflict)
		case old == o.Channel && oldOwner == o.ByDevice:
			return nil // already pinned there, by the same kind of actor: nothing to record
		}
		if _, err := t.Exec(ctx, `INSERT INTO overrides (app_id, device_id, channel, by_device) VALUES ($1, $2, $3, $4)
			ON CONFLICT (app_id, device_id) DO UPDATE SET channel = excluded.channel, by_device = excluded.by_device`,
			o.AppID, dev, o.Channel, o.ByDevice); err != nil {
			return fmt.Errorf("write override: %w", err)
		}
		return a.appendEvent(ota.Event{
			Time: now, Actor: actor, Type: ota.EventOverride, Channel: o.Channel,
			From: old, To: o.Channel, Note: "device " + dev,
		})
	})
	if err != nil {
		return fmt.Errorf("set override of device %s of %s: %w", o.DeviceID, o.AppID, err)
	}
	return nil
}

// DeleteOverride unpins a device, with an event; ErrNotFound when it was
// not pinned, ErrConflict when a device asks to remove an admin's pin.
func (s *Store) DeleteOverride(ctx context.Context, appID, deviceID string, byDevice bool, actor string, now time.Time) error {
	now = norm(now)
	dev := strings.ToLower(deviceID)
	err := s.write(ctx, func(t *txn) error {
		if err := checkName("device id", dev); err != nil {
			return err
		}
		a, err := lockApp(ctx, t, appID)
		if err != nil {
			return err
		}
		var (
			old   string
			owner bool
		)
		err = t.QueryRow(ctx, "SELECT channel, by_device FROM overrides WHERE app_id = $1 AND device_id = $2", appID, dev).Scan(&old, &owner)
		switch {
		case noRows(err):
			return fmt.Errorf("device %q of app %q has no channel override: %w", deviceID, appID, store.ErrNotFound)
		case err != nil:
			return fmt.Errorf("read override: %w", err)
		case byDevice && !owner:
			return fmt.Errorf("device %s is pinned to %s by an admin: %w", dev, old, store.ErrConflict)
		}
		if _, err := t.Exec(ctx, "DELETE FROM overrides WHERE app_id = $1 AND device_id = $2", appID, dev); err != nil {
			return err
		}
		return a.appendEvent(ota.Event{
			Time: now, Actor: actor, Type: ota.EventOverride, Channel: old,
			From: old, Note: "device " + dev + " unpinned",
		})
	})
	if err != nil {
		return fmt.Errorf("delete override of device %s of %s: %w", deviceID, appID, err)
	}
	return nil
}

// listOverrides reads the overrides of app, or of every app when app is "".
func listOverrides(ctx context.Context, db querier, app string) ([]store.DeviceOverride, error) {
	sql, args := "SELECT app_id, device_id, channel, by_device FROM overrides ORDER BY app_id, device_id", []any(nil)
	if app != "" {
		sql, args = "SELECT app_id, device_id, channel, by_device FROM overrides WHERE app_id = $1 ORDER BY device_id", []any{app}
	}
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read overrides: %w", err)
	}
	out := []store.DeviceOverride{}
	for rows.Next() {
		var o store.DeviceOverride
		if err := rows.Scan(&o.AppID, &o.DeviceID, &o.Channel, &o.ByDevice); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// AppendStats stores device events with one COPY per batch. Each app
// keeps its newest events within StatsMaxPerApp events and
// StatsMaxBytesPerApp bytes: the count and bytes per app are kept in
// stats_counts, so trimming needs no count of the rows. Events of apps
// the store does not know are dropped: a device chooses the app_id it
// sends, and keeping them would let anyone grow the database without
// bound.
func (s *Store) AppendStats(ctx context.Context, events []store.StoredStat) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(events))
	var apps []string
	for i := range events {
		ev := &events[i]
		app := ev.Event.AppID
		if app == "" || len(app) > maxNameLen || !storable(app) {
			continue
		}
		raw, err := encodeStat(ev)
		if err != nil {
			return fmt.Errorf("append stats: %w", err)
		}
		rows = append(rows, []any{app, norm(ev.Received), raw, ev.Unverified})
		if !slices.Contains(apps, app) {
			apps = append(apps, app)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	// Counters are locked in one order, so two batches over the same apps
	// cannot deadlock.
	slices.Sort(apps)
	known := map[string]bool{}
	var ask []string
	for _, app := range apps {
		if _, ok := s.apps.Load(app); ok {
			known[app] = true
		} else {
			ask = append(ask, app)
		}
	}
	err := s.write(ctx, func(t *txn) error {
		if len(ask) > 0 {
			found, err := knownApps(ctx, t, ask)
			if err != nil {
				return err
			}
			for app := range found {
				known[app] = true
				s.apps.Store(app, true)
			}
		}
		kept := rows
		added := map[string]int64{}
		addedBytes := map[string]int64{}
		if len(known) < len(apps) {
			kept = make([][]any, 0, len(rows))
			for _, r := range rows {
				if known[r[0].(string)] {
					kept = append(kept, r)
				}
			}
		}
		for _, r := range kept {
			added[r[0].(string)]++
			addedBytes[r[0].(string)] += int64(len(r[2].([]byte)))
		}
		if len(kept) == 0 {
			return nil
		}
		if _, err := t.CopyFrom(ctx, pgx.Identifier{"stats"}, []string{"app_id", "received", "event", "unverified"}, pgx.CopyFromRows(kept)); err != nil {
			return fmt.Errorf("copy %d events: %w", len(kept), err)
		}
		for _, app := range apps {
			if added[app] == 0 {
				continue
			}
			if err := s.trimStats(ctx, t, app, added[app], addedBytes[app]); err != nil {
				return fmt.Errorf("trim stats of app %q: %w", app, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append stats: %w", err)
	}
	return nil
}

// trimStats adds n events of size bytes to the app's counts and drops its
// oldest events beyond the caps of count and bytes. The counter row stays
// locked to the commit, so concurrent batches of one app trim one after
// the other.
func (s *Store) trimStats(ctx context.Context, t *txn, app string, n, size int64) error {
	var count, bytes int64
	if err := t.QueryRow(ctx, `INSERT INTO stats_counts (app_id, n, bytes) VALUES ($1, $2, $3)
		ON CONFLICT (app_id) DO UPDATE SET n = stats_counts.n + excluded.n, bytes = stats_counts.bytes + excluded.bytes
		RETURNING n, bytes`, app, n, size).Scan(&count, &bytes); err != nil {
		return err
	}
	trimmed := false
	for count > int64(s.statsMax) || bytes > s.statsMaxBytes {
		// As many of the oldest as the count is over, or as the bytes
		// are over at the app's average event size, whichever is more.
		drop := count - int64(s.statsMax)
		if over := bytes - s.statsMaxBytes; over > 0 && count > 0 {
			drop = max(drop, over/max(1, bytes/count)+1)
		}
		var gone, freed int64
		if err := t.QueryRow(ctx, `WITH d AS (DELETE FROM stats WHERE app_id = $1 AND (received, id) IN (
			SELECT received, id FROM stats WHERE app_id = $1 ORDER BY received, id LIMIT $2)
			RETURNING octet_length(event::text) AS size)
			SELECT count(*), coalesce(sum(size), 0) FROM d`, app, drop).Scan(&gone, &freed); err != nil {
			return err
		}
		if gone == 0 {
			break
		}
		count, bytes, trimmed = count-gone, bytes-freed, true
	}
	if !trimmed {
		return nil
	}
	_, err := t.Exec(ctx, "UPDATE stats_counts SET n = $2, bytes = $3 WHERE app_id = $1", app, count, bytes)
	return err
}

// encodeStat is the event as JSON: the bytes the device sent when the
// caller has them and PostgreSQL can store them as text, else encoded
// again (json.Marshal writes valid UTF-8).
func encodeStat(st *store.StoredStat) ([]byte, error) {
	if st.Raw != nil && utf8.Valid(st.Raw) {
		return st.Raw, nil
	}
	return json.Marshal(st.Event)
}

// Stats lists an app's events received at or after since, oldest first.
// limit <= 0 means 1000; at most 10000 are returned.
func (s *Store) Stats(ctx context.Context, appID string, since time.Time, limit int) ([]store.StoredStat, error) {
	if limit <= 0 {
		limit = defaultStatsLimit
	}
	limit = min(limit, maxStatsLimit)
	out := []store.StoredStat{}
	err := func(db querier) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := appExists(ctx, db, appID); err != nil {
			return err
		}
		sql, args := "SELECT received, event, unverified FROM stats WHERE app_id = $1 ORDER BY received, id LIMIT $2", []any{appID, limit}
		if !since.IsZero() {
			sql = "SELECT received, event, unverified FROM stats WHERE app_id = $1 AND received >= $3 ORDER BY received, id LIMIT $2"
			args = append(args, since.UTC())
		}
		rows, err := db.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				st  store.StoredStat
				raw []byte
			)
			if err := rows.Scan(&st.Received, &raw, &st.Unverified); err != nil {
				return err
			}
			st.Received = st.Received.UTC()
			if err := decode("stats event", raw, &st.Event); err != nil {
				return err
			}
			out = append(out, st)
		}
		return rows.Err()
	}(s.db())
	if err != nil {
		return nil, fmt.Errorf("read stats: %w", dbErr(ctx, err))
	}
	return out, nil
}
