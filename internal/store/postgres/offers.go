package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/otaship/ota/internal/store"
)

// SaveOffers stores offer records in one transaction: a record replaces
// the one of its device key, one without a version removes it. Records
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
		firsts, lasts                           []time.Time
		counts                                  []int64
		names                                   []string
	)
	for i := range os {
		if os[i].Version == "" {
			gone = append(gone, int64(os[i].Device))
		} else if os[i].AppID != "" {
			names = append(names, os[i].AppID)
		}
	}
	err := s.write(ctx, func(t *txn) error {
		keys, apps, chans, versions, prevs, prevChans, firsts, lasts, counts = nil, nil, nil, nil, nil, nil, nil, nil, nil
		known, err := knownApps(ctx, t, names)
		if err != nil {
			return err
		}
		for i := range os {
			o := &os[i]
			if o.Version == "" || !known[o.AppID] ||
				!storable(o.Channel) || !storable(o.Version) || !storable(o.Previous) || !storable(o.PreviousChannel) {
				continue
			}
			keys = append(keys, int64(o.Device))
			apps, chans, versions = append(apps, o.AppID), append(chans, o.Channel), append(versions, o.Version)
			prevs, prevChans = append(prevs, o.Previous), append(prevChans, o.PreviousChannel)
			firsts, lasts = append(firsts, o.First.UTC()), append(lasts, o.Last.UTC())
			counts = append(counts, int64(o.Count))
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
		_, err = t.Exec(ctx, `INSERT INTO offers (device, app_id, channel, version, previous, previous_channel, first_at, last_at, count)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
				$7::timestamptz[], $8::timestamptz[], $9::bigint[])
			ON CONFLICT (device) DO UPDATE SET app_id = excluded.app_id, channel = excluded.channel, version = excluded.version,
				previous = excluded.previous, previous_channel = excluded.previous_channel,
				first_at = excluded.first_at, last_at = excluded.last_at, count = excluded.count`,
			keys, apps, chans, versions, prevs, prevChans, firsts, lasts, counts)
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
		rows, err := db.Query(ctx, `SELECT device, app_id, channel, version, previous, previous_channel, first_at, last_at, count FROM offers`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				o     store.DeviceOffer
				key   int64
				count int64
			)
			if err := rows.Scan(&key, &o.AppID, &o.Channel, &o.Version, &o.Previous, &o.PreviousChannel, &o.First, &o.Last, &count); err != nil {
				return err
			}
			o.Device, o.Count = uint64(key), int(count)
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
