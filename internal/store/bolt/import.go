package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/storecopy"
	"github.com/otaship/ota/pkg/ota"
)

// Importer fills an empty store with another store's records as they are
// (a storecopy.Sink): keys, channel ids, history sequence numbers and
// times are kept. The PostgreSQL store's Backup writes its records into a
// new file this way.
type Importer struct {
	s *Store
}

var _ storecopy.Sink = (*Importer)(nil)

// Import returns an Importer for s, which must hold nothing yet.
func (s *Store) Import(ctx context.Context) (*Importer, error) {
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bApps, bUsers, bEvents, bTokens, bWebhooks, bOffers} {
			if b := tx.Bucket(name); b != nil {
				if k, _ := b.Cursor().First(); k != nil {
					return fmt.Errorf("the store already holds %s: %w", name, store.ErrConflict)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("import into %s: %w", s.path, err)
	}
	return &Importer{s: s}, nil
}

// PutUsers stores users as they are.
func (im *Importer) PutUsers(ctx context.Context, users []store.User) error {
	return im.s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := usersBucket(tx)
		if err != nil {
			return err
		}
		for _, u := range users {
			if err := checkName("user name", u.Name); err != nil {
				return err
			}
			if err := put(b, []byte(u.Name), userRecord(u)); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutApp stores an app with its channels, bundles and overrides.
func (im *Importer) PutApp(ctx context.Context, r storecopy.AppRecords) error {
	return im.s.update(ctx, func(tx *bbolt.Tx) error {
		a, err := ensureApp(tx, r.App.ID, r.App.CreatedAt)
		if err != nil {
			return err
		}
		a.rec = appRecord{ID: r.App.ID, DefaultChannel: r.App.DefaultChannel, CreatedAt: r.App.CreatedAt}
		if err := a.save(); err != nil {
			return err
		}
		chans, err := a.sub(bChannels)
		if err != nil {
			return err
		}
		for _, c := range r.Channels {
			if err := checkName("channel", c.Name); err != nil {
				return err
			}
			if err := a.putChannel(channelFromWire(c)); err != nil {
				return err
			}
			// New channels continue the app's numbering.
			if c.ID > 0 && uint64(c.ID) > chans.Sequence() {
				if err := chans.SetSequence(uint64(c.ID)); err != nil {
					return err
				}
			}
		}
		for _, b := range r.Bundles {
			if err := checkKind(b.Kind); err != nil {
				return err
			}
			if err := checkName("version", b.Version); err != nil {
				return err
			}
			if err := a.putBundle(bundleFromWire(b)); err != nil {
				return err
			}
		}
		ovs, err := a.sub(bOverrides)
		if err != nil {
			return err
		}
		for _, o := range r.Overrides {
			if err := checkName("device id", o.DeviceID); err != nil {
				return err
			}
			if err := put(ovs, []byte(strings.ToLower(o.DeviceID)), overrideRecord{Channel: o.Channel, ByDevice: o.ByDevice}); err != nil {
				return err
			}
		}
		return a.importDelta(r)
	})
}

// importDelta stores an app's manifests as they are (Known included),
// remembers their files as published, and stores the delta file records.
func (a *appTx) importDelta(r storecopy.AppRecords) error {
	mb, err := a.sub(bManifests)
	if err != nil {
		return err
	}
	seen, err := a.sub(bSeen)
	if err != nil {
		return err
	}
	for _, m := range r.Manifests {
		if err := checkName("version", m.Version); err != nil {
			return err
		}
		rec := manifestRecord{Files: make([]manifestFileRecord, len(m.Files))}
		for i, f := range m.Files {
			rec.Files[i] = manifestFileRecord(f)
			sum := []byte(strings.ToLower(f.SHA256))
			if err := checkName("file sha256", string(sum)); err != nil {
				return err
			}
			if seen.Get(sum) == nil {
				if err := seen.Put(sum, []byte(m.Version)); err != nil {
					return err
				}
			}
		}
		if err := put(mb, []byte(m.Version), rec); err != nil {
			return err
		}
	}
	if len(r.DeltaFiles) == 0 {
		return nil
	}
	fb, err := filesBucket(a.tx, a.id(), true)
	if err != nil {
		return err
	}
	for _, d := range r.DeltaFiles {
		if err := checkName("sha256", d.SHA256); err != nil {
			return err
		}
		rec := deltaFileRecord{Size: d.Size, Br: d.Br, BrSize: d.BrSize, Encrypted: d.Encrypted, CreatedAt: d.CreatedAt}
		if err := put(fb, []byte(strings.ToLower(d.SHA256)), rec); err != nil {
			return err
		}
	}
	return nil
}

// PutEvents stores events under their sequence numbers and indexes them,
// so the next event written is numbered after the newest.
func (im *Importer) PutEvents(ctx context.Context, events []ota.Event) error {
	return im.s.update(ctx, func(tx *bbolt.Tx) error {
		all := tx.Bucket(bEvents)
		if all == nil {
			return fmt.Errorf("bucket %s missing: the file is damaged", bEvents)
		}
		for _, ev := range events {
			if ev.Seq == 0 {
				return fmt.Errorf("event without a sequence number: %w", store.ErrInvalid)
			}
			a, err := loadApp(tx, ev.AppID)
			if err != nil {
				return fmt.Errorf("event %d: %w", ev.Seq, err)
			}
			key := itob(ev.Seq)
			rec := eventRecord{Time: ev.Time, Actor: ev.Actor, Type: ev.Type, AppID: ev.AppID, Channel: ev.Channel,
				Version: ev.Version, From: ev.From, To: ev.To, SHA256: ev.SHA256, Note: ev.Note}
			if err := put(all, key, rec); err != nil {
				return err
			}
			idx, err := a.sub(bHistory)
			if err != nil {
				return err
			}
			if err := idx.Put(key, []byte{}); err != nil {
				return err
			}
			if ev.Channel != "" {
				ch, err := a.channelHistory(ev.Channel, true)
				if err != nil {
					return err
				}
				if err := ch.Put(key, []byte{}); err != nil {
					return err
				}
			}
			if ev.Seq > all.Sequence() {
				if err := all.SetSequence(ev.Seq); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// PutHealth stores version health records as SaveHealth does.
func (im *Importer) PutHealth(ctx context.Context, hs []store.VersionHealth) error {
	return im.s.SaveHealth(ctx, hs)
}

// PutTokens stores CI tokens as they are.
func (im *Importer) PutTokens(ctx context.Context, tokens []store.CIToken) error {
	return im.s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bTokens)
		if err != nil {
			return err
		}
		for _, t := range tokens {
			if err := checkName("token id", t.ID); err != nil {
				return err
			}
			if err := put(b, []byte(t.ID), tokenRecord(t)); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutWebhook stores a webhook and its delivery log, oldest first.
func (im *Importer) PutWebhook(ctx context.Context, w store.StoredWebhook, log []ota.WebhookDelivery) error {
	if err := checkName("webhook id", w.ID); err != nil {
		return err
	}
	return im.s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bWebhooks)
		if err != nil {
			return err
		}
		rec := webhookRecord{ID: w.ID, URL: w.URL, Secret: w.Secret, AppID: w.AppID, Events: w.Events,
			CreatedBy: w.CreatedBy, CreatedAt: w.CreatedAt}
		if err := put(b, []byte(w.ID), rec); err != nil {
			return err
		}
		if len(log) == 0 {
			return nil
		}
		all, err := tx.CreateBucketIfNotExists(bWDeliveries)
		if err != nil {
			return err
		}
		d, err := all.CreateBucketIfNotExists([]byte(w.ID))
		if err != nil {
			return err
		}
		for _, e := range log {
			seq, err := d.NextSequence()
			if err != nil {
				return err
			}
			if err := put(d, itob(seq), deliveryRecord{EventID: e.EventID, EventType: e.EventType, Attempt: e.Attempt,
				Time: e.Time, Status: e.Status, Error: e.Error, DurationMS: e.DurationMS, OK: e.OK}); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutStats stores stats events of one app, oldest first, without the cap
// (the copy holds what the source held).
func (im *Importer) PutStats(ctx context.Context, appID string, stats []store.StoredStat) error {
	return im.s.update(ctx, func(tx *bbolt.Tx) error {
		a, err := loadApp(tx, appID)
		if err != nil {
			return err
		}
		b, err := a.sub(bStats)
		if err != nil {
			return err
		}
		b.FillPercent = 0.95
		for i := range stats {
			st := stats[i]
			st.Received = st.Received.UTC().Round(0)
			raw, err := encodeStat(&st)
			if err != nil {
				return err
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			key := make([]byte, 16)
			if ns := st.Received.UnixNano(); ns > 0 {
				binary.BigEndian.PutUint64(key, uint64(ns))
			}
			binary.BigEndian.PutUint64(key[8:], seq)
			if err := b.Put(key, raw); err != nil {
				return err
			}
		}
		return addCount(a.b, len(stats))
	})
}

// PutOffers stores device offer records as SaveOffers does.
func (im *Importer) PutOffers(ctx context.Context, offers []store.DeviceOffer) error {
	return im.s.SaveOffers(ctx, offers)
}

// PutAdoption stores adoption days as SaveAdoption does.
func (im *Importer) PutAdoption(ctx context.Context, days []store.AdoptionDay) error {
	return im.s.SaveAdoption(ctx, days, time.Time{})
}

// Finish checks that the store holds what want counts. Every Put was
// committed on its own already.
func (im *Importer) Finish(ctx context.Context, want storecopy.Counts) error {
	have, err := im.s.Counts(ctx)
	if err != nil {
		return err
	}
	if diff := have.Diff(want); len(diff) > 0 {
		return fmt.Errorf("the copy in %s does not hold what was read: %s", im.s.path, strings.Join(diff, "; "))
	}
	return nil
}

// Counts counts the store's records.
func (s *Store) Counts(ctx context.Context) (storecopy.Counts, error) {
	var c storecopy.Counts
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		keys := func(b *bbolt.Bucket) int {
			if b == nil {
				return 0
			}
			return b.Stats().KeyN
		}
		c.Users = keys(tx.Bucket(bUsers))
		c.Tokens = keys(tx.Bucket(bTokens))
		c.Webhooks = keys(tx.Bucket(bWebhooks))
		c.Health = keys(tx.Bucket(bHealth))
		c.Offers = keys(tx.Bucket(bOffers))
		c.Adoption = keys(tx.Bucket(bAdoption))
		events := tx.Bucket(bEvents)
		c.Events = keys(events)
		if events != nil {
			if k, _ := events.Cursor().Last(); len(k) == 8 {
				c.LastSeq = binary.BigEndian.Uint64(k)
			}
		}
		if d := tx.Bucket(bWDeliveries); d != nil {
			err := d.ForEachBucket(func(k []byte) error {
				c.Deliveries += d.Bucket(k).Stats().KeyN
				return nil
			})
			if err != nil {
				return err
			}
		}
		apps, err := appsBucket(tx)
		if err != nil {
			return err
		}
		return apps.ForEachBucket(func(k []byte) error {
			a, err := loadApp(tx, string(k))
			if err != nil {
				return err
			}
			c.Apps++
			if files, err := filesBucket(tx, a.id(), false); err != nil {
				return err
			} else if files != nil {
				c.DeltaFiles += files.Stats().KeyN
			}
			for name, n := range map[string]*int{string(bChannels): &c.Channels, ota.KindWeb: &c.Bundles, ota.KindAPK: &c.Bundles,
				string(bOverrides): &c.Overrides, string(bStats): &c.Stats, string(bManifests): &c.Manifests} {
				b, err := a.sub([]byte(name))
				if err != nil {
					return err
				}
				*n += b.Stats().KeyN
			}
			return nil
		})
	})
	if err != nil {
		return c, fmt.Errorf("count records of %s: %w", s.path, err)
	}
	return c, nil
}

func channelFromWire(c ota.Channel) channelRecord {
	r := channelRecord{Name: c.Name, ID: c.ID, Kind: c.Kind, Active: c.Active, Policy: policyRecord(c.Policy), UpdatedAt: c.UpdatedAt}
	for _, rel := range c.Releases {
		r.Releases = append(r.Releases, releaseRecord(rel))
	}
	if c.Rollout != nil {
		r.Rollout = rolloutOf(c.Rollout)
	}
	return r
}

func bundleFromWire(b ota.Bundle) bundleRecord {
	return bundleRecord{
		Version: b.Version, Kind: b.Kind, SHA256: b.SHA256, Size: b.Size, UploadedAt: b.UploadedAt,
		UploadedBy: b.UploadedBy, Notes: b.Notes, MinNative: b.MinNative, MaxNative: b.MaxNative,
		Native: b.Native, Encryption: newEncryptionRecord(b.Encryption), Signature: b.Signature,
		ManifestSignature: b.ManifestSignature, Files: b.Files, Deleted: b.Deleted,
	}
}
