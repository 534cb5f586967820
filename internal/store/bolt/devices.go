package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Stats query limits.
const (
	defaultStatsLimit = 1000
	maxStatsLimit     = 10000
)

// overrideRecord is a pinned device as stored in an app's overrides
// bucket. Values written before pins had owners are the bare channel name:
// they read as an admin's pin (see migration 5, which tells a device's
// apart by its history event).
type overrideRecord struct {
	Channel  string `json:"channel"`
	ByDevice bool   `json:"by_device,omitempty"`
}

func decodeOverride(v []byte) (overrideRecord, error) {
	if len(v) == 0 || v[0] != '{' {
		return overrideRecord{Channel: string(v)}, nil // a channel name never starts with '{'
	}
	var r overrideRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("decode override: %w", err)
	}
	return r, nil
}

// overrideNote names the device in an override event.
func overrideNote(dev string) string { return "device " + dev }

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
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		a, err := loadApp(tx, o.AppID)
		if err != nil {
			return err
		}
		if _, err := a.channel(o.Channel); err != nil {
			return err
		}
		b, err := a.sub(bOverrides)
		if err != nil {
			return err
		}
		var old overrideRecord
		if v := b.Get([]byte(dev)); v != nil {
			if old, err = decodeOverride(v); err != nil {
				return err
			}
			if o.ByDevice && !old.ByDevice {
				return fmt.Errorf("device %s is pinned to %s by an admin: %w", dev, old.Channel, store.ErrConflict)
			}
		}
		rec := overrideRecord{Channel: o.Channel, ByDevice: o.ByDevice}
		if old == rec {
			return nil // already pinned there, by the same kind of actor: nothing to record
		}
		if err := put(b, []byte(dev), rec); err != nil {
			return fmt.Errorf("write override: %w", err)
		}
		_, err = a.appendEvent(eventRecord{
			Time: now, Actor: actor, Type: ota.EventOverride, Channel: o.Channel,
			From: old.Channel, To: o.Channel, Note: overrideNote(dev),
		})
		return err
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
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		if err := checkName("device id", dev); err != nil {
			return err
		}
		a, err := loadApp(tx, appID)
		if err != nil {
			return err
		}
		b, err := a.sub(bOverrides)
		if err != nil {
			return err
		}
		v := b.Get([]byte(dev))
		if v == nil {
			return fmt.Errorf("device %q of app %q has no channel override: %w", deviceID, appID, store.ErrNotFound)
		}
		old, err := decodeOverride(v)
		if err != nil {
			return err
		}
		if byDevice && !old.ByDevice {
			return fmt.Errorf("device %s is pinned to %s by an admin: %w", dev, old.Channel, store.ErrConflict)
		}
		if err := b.Delete([]byte(dev)); err != nil {
			return err
		}
		_, err = a.appendEvent(eventRecord{
			Time: now, Actor: actor, Type: ota.EventOverride, Channel: old.Channel,
			From: old.Channel, Note: overrideNote(dev) + " unpinned",
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("delete override of device %s of %s: %w", deviceID, appID, err)
	}
	return nil
}

// markDevicePins is migration 5 (see migrations).
func markDevicePins(tx *bbolt.Tx) error {
	apps, err := appsBucket(tx)
	if err != nil {
		return err
	}
	events := tx.Bucket(bEvents)
	return apps.ForEachBucket(func(k []byte) error {
		ab := apps.Bucket(k)
		ovs, hist := ab.Bucket(bOverrides), ab.Bucket(bHistory)
		if ovs == nil || hist == nil || events == nil {
			return nil
		}
		open := map[string]string{} // note of the setting event → device
		_ = ovs.ForEach(func(dev, v []byte) error {
			if len(v) > 0 && v[0] != '{' {
				open[overrideNote(string(dev))] = string(dev)
			}
			return nil
		})
		byDevice := map[string]bool{}
		c := hist.Cursor()
		for seq, _ := c.Last(); seq != nil && len(open) > 0; seq, _ = c.Prev() {
			var ev eventRecord
			if ok, err := get(events, seq, &ev); err != nil || !ok {
				continue // an unreadable event decides nothing
			}
			dev, ok := open[ev.Note]
			if ev.Type != ota.EventOverride || !ok {
				continue
			}
			delete(open, ev.Note)
			byDevice[dev] = strings.HasPrefix(ev.Actor, "device:")
		}
		for dev, mine := range byDevice {
			if !mine {
				continue
			}
			ch := string(ovs.Get([]byte(dev)))
			if err := put(ovs, []byte(dev), overrideRecord{Channel: ch, ByDevice: true}); err != nil {
				return fmt.Errorf("app %q: %w", k, err)
			}
		}
		return nil
	})
}

// overrides lists an app's overrides.
func (a *appTx) overrides() ([]store.DeviceOverride, error) {
	b, err := a.sub(bOverrides)
	if err != nil {
		return nil, err
	}
	var out []store.DeviceOverride
	err = b.ForEach(func(k, v []byte) error {
		r, err := decodeOverride(v)
		if err != nil {
			return fmt.Errorf("override of %q: %w", k, err)
		}
		out = append(out, store.DeviceOverride{AppID: a.id(), DeviceID: string(k), Channel: r.Channel, ByDevice: r.ByDevice})
		return nil
	})
	return out, err
}

// AppendStats stores device events through db.Batch, so concurrent callers
// share one commit and one fsync. Each app keeps its newest events within
// StatsMaxPerApp events and StatsMaxBytesPerApp bytes. Events of apps the
// store does not know are dropped: a device chooses the app_id it sends,
// and keeping them would let anyone grow the file without bound. With less
// than StatsReserveBytes free on the disk the batch is refused
// (store.ErrStorageFull): that room is for uploads and rollbacks.
func (s *Store) AppendStats(ctx context.Context, events []store.StoredStat) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	if s.reserve.short() {
		return fmt.Errorf("append stats: less than %d bytes free next to %s: %w", s.reserve.min, s.path, store.ErrStorageFull)
	}
	type encoded struct {
		app  string
		when uint64
		raw  []byte
	}
	// Encode outside the transaction: Batch may run fn more than once, and
	// the shared write lock is the scarce resource.
	enc := make([]encoded, 0, len(events))
	for _, ev := range events {
		ev.Received = norm(ev.Received)
		raw, err := encodeStat(&ev)
		if err != nil {
			return fmt.Errorf("append stats: %w", err)
		}
		when := uint64(0)
		if ns := ev.Received.UnixNano(); ns > 0 {
			when = uint64(ns)
		}
		enc = append(enc, encoded{app: ev.Event.AppID, when: when, raw: raw})
	}
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		apps, err := appsBucket(tx)
		if err != nil {
			return err
		}
		// Counted per app and written once per batch, not per event.
		added := map[string]int{}
		addedBytes := map[string]int64{}
		touched := map[string]*bbolt.Bucket{}
		for _, e := range enc {
			if e.app == "" || len(e.app) > maxNameLen {
				continue
			}
			ab := apps.Bucket([]byte(e.app))
			if ab == nil {
				continue
			}
			b := ab.Bucket(bStats)
			if b == nil {
				return fmt.Errorf("app %q: bucket %s missing: the file is damaged", e.app, bStats)
			}
			if touched[e.app] == nil {
				// The byte count of files from before it is added up
				// now, before this batch's events are in.
				if _, err := statsBytes(ab); err != nil {
					return err
				}
			}
			// Keys only grow (time, then sequence): full pages, not the
			// half-full ones bbolt's default split leaves for inserts.
			b.FillPercent = 0.95
			seq, err := b.NextSequence()
			if err != nil {
				return fmt.Errorf("number stats event of app %q: %w", e.app, err)
			}
			key := make([]byte, 16)
			binary.BigEndian.PutUint64(key, e.when)
			binary.BigEndian.PutUint64(key[8:], seq)
			if err := b.Put(key, e.raw); err != nil {
				return fmt.Errorf("write stats event of app %q: %w", e.app, err)
			}
			added[e.app]++
			addedBytes[e.app] += statSize(key, e.raw)
			touched[e.app] = ab
		}
		for app, ab := range touched {
			if err := addCount(ab, added[app]); err != nil {
				return err
			}
			if err := addBytes(ab, addedBytes[app]); err != nil {
				return err
			}
			if err := s.trimStats(ab); err != nil {
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

// encodeStat is json.Marshal of st, with the event's bytes as sent when
// the caller has them (store.StoredStat.Raw).
func encodeStat(st *store.StoredStat) ([]byte, error) {
	if st.Raw == nil {
		return json.Marshal(st)
	}
	when, err := st.Received.MarshalJSON()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(`{"received":,"event":,"unverified":true}`)+len(when)+len(st.Raw))
	out = append(out, `{"received":`...)
	out = append(out, when...)
	out = append(out, `,"event":`...)
	out = append(out, st.Raw...)
	if st.Unverified {
		out = append(out, `,"unverified":true`...)
	}
	return append(out, '}'), nil
}

func statsCount(ab *bbolt.Bucket) uint64 {
	if v := ab.Get(kStatsN); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func addCount(ab *bbolt.Bucket, d int) error {
	n := int64(statsCount(ab)) + int64(d)
	if n < 0 {
		n = 0
	}
	return ab.Put(kStatsN, itob(uint64(n)))
}

// statSize is what one stored event counts against the byte bound.
func statSize(key, value []byte) int64 { return int64(len(key) + len(value)) }

// statsBytes returns the bytes of an app's stored events. Files from
// before the byte bound have no count yet: it is added up once.
func statsBytes(ab *bbolt.Bucket) (uint64, error) {
	if v := ab.Get(kStatsB); len(v) == 8 {
		return binary.BigEndian.Uint64(v), nil
	}
	var n int64
	if b := ab.Bucket(bStats); b != nil {
		_ = b.ForEach(func(k, v []byte) error { n += statSize(k, v); return nil })
	}
	return uint64(n), ab.Put(kStatsB, itob(uint64(n)))
}

func addBytes(ab *bbolt.Bucket, d int64) error {
	n, err := statsBytes(ab)
	if err != nil {
		return err
	}
	return ab.Put(kStatsB, itob(n+uint64(d)))
}

// trimStats drops the oldest events beyond the per-app caps of count and
// bytes. The keys are collected first and deleted after: restarting the
// cursor with First after each delete walked over the emptied front of
// the leaf every time, and was a fifth of the CPU of storing a batch.
func (s *Store) trimStats(ab *bbolt.Bucket) error {
	n := statsCount(ab)
	size, err := statsBytes(ab)
	if err != nil {
		return err
	}
	if n <= uint64(s.statsMax) && size <= uint64(s.statsMaxBytes) {
		return nil
	}
	b := ab.Bucket(bStats)
	var keys [][]byte
	var freed uint64
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		left := n - uint64(len(keys))
		if left <= uint64(s.statsMax) && size-freed <= uint64(s.statsMaxBytes) {
			break
		}
		freed += uint64(statSize(k, v))
		// k is only valid while the page is unchanged: copy it.
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	if err := ab.Put(kStatsN, itob(n-uint64(len(keys)))); err != nil {
		return err
	}
	return ab.Put(kStatsB, itob(size-freed))
}

// Stats lists an app's events received at or after since, oldest first.
// limit <= 0 means 1000; at most 10000 are returned.
func (s *Store) Stats(ctx context.Context, appID string, since time.Time, limit int) ([]store.StoredStat, error) {
	if limit <= 0 {
		limit = defaultStatsLimit
	}
	limit = min(limit, maxStatsLimit)
	from := make([]byte, 8)
	if ns := since.UnixNano(); ns > 0 && !since.IsZero() {
		binary.BigEndian.PutUint64(from, uint64(ns))
	}
	out := []store.StoredStat{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		a, err := loadApp(tx, appID)
		if err != nil {
			return err
		}
		b, err := a.sub(bStats)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Seek(from); k != nil && len(out) < limit; k, v = c.Next() {
			var st store.StoredStat
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("stats event %x: %w", k, err)
			}
			out = append(out, st)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read stats: %w", err)
	}
	return out, nil
}
