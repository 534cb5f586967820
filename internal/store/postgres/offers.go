package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/otaship/ota/internal/store"
)

// SaveOffers stores offer records in one transaction: a record replaces
// the one of its device key, one with neither a version nor a running
// version removes it. Records
// of apps the store does not know, or with text PostgreSQL cannot keep,
// are dropped. Device keys use all 64 bits; they are stored as the signed
// bigint of the same bits.
func (s *Store) SaveOffers(ctx context.Context, os []store.DeviceOffer) error {
	if len(os) == 0 {
		return nil
	}
	var (
		gone                                    []int64
		keys                                    []int64
		apps, chans, versions, prevs, prevChans []string
		firsts, lasts, seens                    []time.Time
		counts, flags                           []int64
		runs, runChans, builds, plugins         []string
		names                                   []string
	)
	for i := range os {
		if os[i].Version == "" && os[i].Running == "" {
			gone = append(gone, int64(os[i].Device))
		} else if os[i].AppID != "" {
			names = append(names, os[i].AppID)
		}
	}
	err := s.write(ctx, func(t *txn) error {
		keys, apps, chans, versions, prevs, prevChans, firsts, lasts, counts = nil, nil, nil, nil, nil, nil, nil, nil, nil
		seens, flags, runs, runChans, builds, plugins = nil, nil, nil, nil, nil, nil
		known, err := knownApps(ctx, t, names)
		if err != nil {
			return err
		}
		for i := range os {
			o := &os[i]
			if (o.Version == "" && o.Running == "") || !known[o.AppID] ||
				!storable(o.Channel) || !storable(o.Version) || !storable(o.Previous) || !storable(o.PreviousChannel) ||
				!storable(o.Running) || !storable(o.RunningChannel) || !storable(o.Build) || !storable(o.Plugin) {
				continue
			}
			keys = append(keys, int64(o.Device))
			apps, chans, versions = append(apps, o.AppID), append(chans, o.Channel), append(versions, o.Version)
			prevs, prevChans = append(prevs, o.Previous), append(prevChans, o.PreviousChannel)
			firsts, lasts = append(firsts, o.First.UTC()), append(lasts, o.Last.UTC())
			counts = append(counts, int64(o.Count))
			seens, flags = append(seens, o.Seen.UTC()), append(flags, int64(o.Flags))
			runs, runChans = append(runs, o.Running), append(runChans, o.RunningChannel)
			builds, plugins = append(builds, o.Build), append(plugins, o.Plugin)
		}
		if len(gone) > 0 {
			if _, err := t.Exec(ctx, "DELETE FROM offers WHERE device = ANY($1)", gone); err != nil {
				return fmt.Errorf("remove offers: %w", err)
			}
		}
		if len(keys) == 0 {
			return nil
		}
		// One record per key: a batch names each key once (the memory's
		// changes since the last save).
		_, err = t.Exec(ctx, `INSERT INTO offers (device, app_id, channel, version, previous, previous_channel, first_at, last_at, count,
				seen_at, flags, running, running_channel, build, plugin)
			SELECT d, a, c, v, p, pc, f, l, n, nullif(sa, 'epoch'::timestamptz), fl, r, rc, b, pl
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
				$7::timestamptz[], $8::timestamptz[], $9::bigint[], $10::timestamptz[], $11::bigint[],
				$12::text[], $13::text[], $14::text[], $15::text[]) AS u (d, a, c, v, p, pc, f, l, n, sa, fl, r, rc, b, pl)
			ON CONFLICT (device) DO UPDATE SET app_id = excluded.app_id, channel = excluded.channel, version = excluded.version,
				previous = excluded.previous, previous_channel = excluded.previous_channel,
				first_at = excluded.first_at, last_at = excluded.last_at, count = excluded.count,
				seen_at = excluded.seen_at, flags = excluded.flags, running = excluded.running,
				running_channel = excluded.running_channel, build = excluded.build, plugin = excluded.plugin`,
			keys, apps, chans, versions, prevs, prevChans, firsts, lasts, counts, epochs(seens), flags, runs, runChans, builds, plugins)
		if err != nil {
			return fmt.Errorf("write offers: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save %d offers: %w", len(os), err)
	}
	return nil
}

// LoadOffers calls fn with every stored offer record, streaming the rows.
func (s *Store) LoadOffers(ctx context.Context, fn func(store.DeviceOffer) error) error {
	err := s.read(ctx, func(db querier) error {
		rows, err := db.Query(ctx, `SELECT device, app_id, channel, version, previous, previous_channel, first_at, last_at, count,
			seen_at, flags, running, running_channel, build, plugin FROM offers`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				o     store.DeviceOffer
				key   int64
				count int64
				seen  *time.Time
				flags int64
			)
			if err := rows.Scan(&key, &o.AppID, &o.Channel, &o.Version, &o.Previous, &o.PreviousChannel, &o.First, &o.Last, &count,
				&seen, &flags, &o.Running, &o.RunningChannel, &o.Build, &o.Plugin); err != nil {
				return err
			}
			o.Device, o.Count, o.Flags = uint64(key), int(count), uint16(flags)
			if seen != nil {
				o.Seen = seen.UTC()
			}
			o.First, o.Last = o.First.UTC(), o.Last.UTC()
			if err := fn(o); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("load offers: %w", dbErr(ctx, err))
	}
	return nil
}

// epochs maps zero times to the Unix epoch, which the insert turns into
// NULL (an array of timestamptz cannot hold NULL from a []time.Time).
func epochs(ts []time.Time) []time.Time {
	for i, t := range ts {
		if t.IsZero() {
			ts[i] = time.Unix(0, 0).UTC()
		}
	}
	return ts
}
