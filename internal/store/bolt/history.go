package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// History page sizes.
const (
	defaultHistoryLimit = 50
	maxHistoryLimit     = 500
)

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// appendEvent stores ev under the next Seq and indexes it under its app and,
// when it has one, its channel. It runs in the caller's write transaction, so
// the event exists exactly when the change it records does.
func (a *appTx) appendEvent(ev eventRecord) (uint64, error) {
	events := a.tx.Bucket(bEvents)
	if events == nil {
		return 0, fmt.Errorf("bucket %s missing: the file is damaged", bEvents)
	}
	seq, err := events.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("next event number: %w", err)
	}
	ev.AppID = a.id()
	key := itob(seq)
	if err := put(events, key, ev); err != nil {
		return 0, fmt.Errorf("event %d: %w", seq, err)
	}
	idx, err := a.sub(bHistory)
	if err != nil {
		return 0, err
	}
	if err := idx.Put(key, []byte{}); err != nil {
		return 0, fmt.Errorf("index event %d of app %q: %w", seq, a.id(), err)
	}
	if ev.Channel != "" {
		ch, err := a.channelHistory(ev.Channel, true)
		if err != nil {
			return 0, err
		}
		if err := ch.Put(key, []byte{}); err != nil {
			return 0, fmt.Errorf("index event %d of channel %q: %w", seq, ev.Channel, err)
		}
	}
	return seq, nil
}

// channelHistory returns the index bucket of a channel's events, nil when
// the channel has none yet and create is false.
func (a *appTx) channelHistory(channel string, create bool) (*bbolt.Bucket, error) {
	all, err := a.sub(bCHistory)
	if err != nil {
		return nil, err
	}
	if !create {
		return all.Bucket([]byte(channel)), nil
	}
	b, err := all.CreateBucketIfNotExists([]byte(channel))
	if err != nil {
		return nil, fmt.Errorf("history index of channel %q of app %q: %w", channel, a.id(), err)
	}
	return b, nil
}

// History returns a page of events, newest first. It walks an index
// backwards from q.Before, so a page costs the same however long the
// history is. A channel filter needs an app: channel names are per app.
func (s *Store) History(ctx context.Context, q store.HistoryQuery) ([]ota.Event, uint64, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultHistoryLimit
	}
	limit = min(limit, maxHistoryLimit)
	if q.AppID == "" && q.Channel != "" {
		return nil, 0, fmt.Errorf("history of channel %q: name its app too: %w", q.Channel, store.ErrInvalid)
	}
	var (
		out  []ota.Event
		next uint64
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		events := tx.Bucket(bEvents)
		if events == nil {
			return fmt.Errorf("bucket %s missing: the file is damaged", bEvents)
		}
		idx := events
		if q.AppID != "" {
			a, err := loadApp(tx, q.AppID)
			if err != nil {
				return err
			}
			if q.Channel == "" {
				if idx, err = a.sub(bHistory); err != nil {
					return err
				}
			} else {
				if _, err := a.channel(q.Channel); err != nil {
					return err
				}
				if idx, err = a.channelHistory(q.Channel, false); err != nil {
					return err
				}
				if idx == nil {
					return nil // a channel without events yet
				}
			}
		}
		c := idx.Cursor()
		var k []byte
		if q.Before == 0 {
			k, _ = c.Last()
		} else if k, _ = c.Seek(itob(q.Before)); k == nil {
			k, _ = c.Last() // every key is below Before
		} else {
			k, _ = c.Prev() // Seek lands on the first key >= Before
		}
		for ; k != nil; k, _ = c.Prev() {
			if len(out) == limit {
				next = out[len(out)-1].Seq
				break
			}
			if len(k) != 8 {
				return fmt.Errorf("history key %x is not a sequence number: the file is damaged", k)
			}
			seq := binary.BigEndian.Uint64(k)
			var ev eventRecord
			ok, err := get(events, k, &ev)
			if err != nil {
				return fmt.Errorf("event %d: %w", seq, err)
			}
			if !ok {
				return fmt.Errorf("event %d is indexed but missing: the file is damaged", seq)
			}
			out = append(out, ev.wire(seq))
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read history: %w", err)
	}
	if out == nil {
		out = []ota.Event{}
	}
	return out, next, nil
}
