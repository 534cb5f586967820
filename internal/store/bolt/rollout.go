package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// SetRollout changes the staged rollout of the channel's active version.
// See store.Store for the contract.
func (s *Store) SetRollout(ctx context.Context, appID, channel string, req ota.RolloutRequest, actor string, now time.Time) (ota.Channel, error) {
	now = norm(now)
	var out ota.Channel
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		a, err := loadApp(tx, appID)
		if err != nil {
			return err
		}
		ch, err := a.channel(channel)
		if err != nil {
			return err
		}
		r := ch.Rollout
		if r == nil || r.Target != ch.Active || ch.Active == "" {
			return fmt.Errorf("channel %q of app %q has no staged rollout of its active version %q; deploy with --rollout to start one: %w",
				channel, appID, ch.Active, store.ErrInvalid)
		}
		after, typ, note, changed, err := store.ChangeRollout(r.wire(), req, actor, now)
		if err != nil {
			return err
		}
		if changed {
			ch.Rollout = rolloutOf(&after)
			ch.UpdatedAt = now
			if err := a.putChannel(ch); err != nil {
				return err
			}
			if _, err := a.appendEvent(eventRecord{
				Time: now, Actor: actor, Type: typ, Channel: channel, Version: after.Target, Note: note,
			}); err != nil {
				return err
			}
		}
		out, err = a.wireChannel(ch)
		return err
	})
	if err != nil {
		return ota.Channel{}, fmt.Errorf("change rollout of %s of %s: %w", channel, appID, err)
	}
	return out, nil
}

// Halt stops the rollout of version and re-points the channel to the
// release before it. See store.Store for the contract.
func (s *Store) Halt(ctx context.Context, appID, channel, version, reason, actor string, now time.Time) (ota.ChannelChange, error) {
	now = norm(now)
	res := ota.ChannelChange{AppID: appID, Channel: channel}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		a, err := loadApp(tx, appID)
		if err != nil {
			return err
		}
		ch, err := a.channel(channel)
		if err != nil {
			return err
		}
		res.From, res.To = ch.Active, ch.Active
		if ch.Active != version || version == "" || version == ota.VersionBuiltin {
			return nil // already re-pointed: a retried halt changes nothing
		}
		r := ch.Rollout
		if r != nil && r.Halted && r.Target == version {
			return nil
		}
		var prev string
		percent := 100
		if r != nil && r.Target == version {
			prev, percent = r.Previous, r.Percent
		} else {
			switch p, err := previousRelease(ch); {
			case err == nil:
				prev = p
			case errors.Is(err, store.ErrNoPrevious):
				// Nothing to go back to: the halted rollout keeps the
				// version from every device that does not run it yet.
			default:
				return err
			}
		}
		sum := ""
		if prev != "" && prev != ota.VersionBuiltin {
			b, err := a.bundle(ch.Kind, prev)
			switch {
			case err == nil && !b.Deleted:
				sum = b.SHA256
			case err == nil || isNotFound(err):
				prev = "" // gone since: stay, halted
			default:
				return err
			}
		}
		if prev != "" {
			ch.Active = prev
		}
		ch.Rollout = &rolloutRecord{Target: version, Previous: prev, Percent: percent, Halted: true, Reason: reason, UpdatedAt: now}
		if r != nil {
			ch.Rollout.StartedAt = r.StartedAt
		}
		ch.UpdatedAt = now
		res.To = ch.Active
		if err := a.putChannel(ch); err != nil {
			return err
		}
		_, err = a.appendEvent(eventRecord{
			Time: now, Actor: actor, Type: ota.EventHalt, Channel: channel,
			Version: version, From: version, To: ch.Active, SHA256: sum, Note: reason,
		})
		return err
	})
	if err != nil {
		return ota.ChannelChange{}, fmt.Errorf("halt %s on %s of %s: %w", version, channel, appID, err)
	}
	return res, nil
}

// healthKey is app id, NUL, version: NUL cannot appear in either.
func healthKey(appID, version string) []byte {
	return []byte(appID + "\x00" + version)
}

// SaveHealth stores version health records in one transaction, replacing
// earlier records of the same app and version.
func (s *Store) SaveHealth(ctx context.Context, hs []store.VersionHealth) error {
	if len(hs) == 0 {
		return nil
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bHealth)
		if b == nil {
			return fmt.Errorf("bucket %s missing: the file is damaged", bHealth)
		}
		apps, err := appsBucket(tx)
		if err != nil {
			return err
		}
		for _, h := range hs {
			if checkName("app id", h.AppID) != nil || checkName("version", h.Version) != nil {
				continue
			}
			if len(h.Installed) == 0 && len(h.Failed) == 0 {
				// Also when the app is gone: its records go with it.
				if err := b.Delete(healthKey(h.AppID, h.Version)); err != nil {
					return fmt.Errorf("remove health of %s %s: %w", h.AppID, h.Version, err)
				}
				continue
			}
			if apps.Bucket([]byte(h.AppID)) == nil {
				continue
			}
			if err := put(b, healthKey(h.AppID, h.Version), h); err != nil {
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

// LoadHealth reads every stored version health record.
func (s *Store) LoadHealth(ctx context.Context) ([]store.VersionHealth, error) {
	var out []store.VersionHealth
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bHealth)
		if b == nil {
			return fmt.Errorf("bucket %s missing: the file is damaged", bHealth)
		}
		return b.ForEach(func(k, v []byte) error {
			var h store.VersionHealth
			if err := json.Unmarshal(v, &h); err != nil {
				return fmt.Errorf("decode health %q: %w", k, err)
			}
			out = append(out, h)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load health: %w", err)
	}
	return out, nil
}
