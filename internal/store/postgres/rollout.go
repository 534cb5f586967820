package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// SetRollout changes the staged rollout of the channel's active version.
// See store.Store for the contract.
func (s *Store) SetRollout(ctx context.Context, appID, channel string, req ota.RolloutRequest, actor string, now time.Time) (ota.Channel, error) {
	now = norm(now)
	var out ota.Channel
	err := s.write(ctx, func(t *txn) error {
		a, err := lockApp(ctx, t, appID)
		if err != nil {
			return err
		}
		ch, err := a.channel(ctx, channel)
		if err != nil {
			return err
		}
		r := ch.Rollout
		if r == nil || r.Target != ch.Active || ch.Active == "" {
			return fmt.Errorf("channel %q of app %q has no staged rollout of its active version %q; deploy with --rollout to start one: %w",
				channel, appID, ch.Active, store.ErrInvalid)
		}
		after, typ, note, changed, err := store.ChangeRollout(*r, req, actor, now)
		if err != nil {
			return err
		}
		if changed {
			ch.Rollout = &after
			ch.UpdatedAt = now
			if err := a.putChannel(ctx, ch); err != nil {
				return err
			}
			if err := a.appendEvent(ota.Event{
				Time: now, Actor: actor, Type: typ, Channel: channel, Version: after.Target, Note: note,
			}); err != nil {
				return err
			}
		}
		out, err = a.wireChannel(ctx, ch)
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
	var res ota.ChannelChange
	err := s.write(ctx, func(t *txn) error {
		res = ota.ChannelChange{AppID: appID, Channel: channel}
		a, err := lockApp(ctx, t, appID)
		if err != nil {
			return err
		}
		ch, err := a.channel(ctx, channel)
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
			b, err := a.bundle(ctx, ch.Kind, prev)
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
		ch.Rollout = &ota.Rollout{Target: version, Previous: prev, Percent: percent, Halted: true, Reason: reason, UpdatedAt: now}
		if r != nil {
			ch.Rollout.StartedAt = r.StartedAt
		}
		ch.UpdatedAt = now
		res.To = ch.Active
		if err := a.putChannel(ctx, ch); err != nil {
			return err
		}
		return a.appendEvent(ota.Event{
			Time: now, Actor: actor, Type: ota.EventHalt, Channel: channel,
			Version: version, From: version, To: ch.Active, SHA256: sum, Note: reason,
		})
	})
	if err != nil {
		return ota.ChannelChange{}, fmt.Errorf("halt %s on %s of %s: %w", version, channel, appID, err)
	}
	return res, nil
}
