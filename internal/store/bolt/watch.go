package bolt

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store"
)

// bAdoption holds adoption days: app id, NUL, day (8 bytes, big-endian
// Unix seconds of its midnight) → adoptionRecord. It is created by the
// first write, so files from before need no migration.
var bAdoption = []byte("adoption")

type adoptionRecord struct {
	Counts []store.AdoptionCount `json:"counts"`
}

func adoptionKey(app string, day time.Time) []byte {
	k := make([]byte, 0, len(app)+9)
	k = append(k, app...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(day.Unix()))
}

// SaveAdoption stores adoption days, replacing those of the same app and
// day, and removes the days before keepFrom.
func (s *Store) SaveAdoption(ctx context.Context, days []store.AdoptionDay, keepFrom time.Time) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bAdoption)
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", bAdoption, err)
		}
		apps, err := appsBucket(tx)
		if err != nil {
			return err
		}
		for _, d := range days {
			if checkName("app id", d.AppID) != nil || apps.Bucket([]byte(d.AppID)) == nil {
				continue
			}
			if err := put(b, adoptionKey(d.AppID, d.Day.UTC()), adoptionRecord{Counts: d.Counts}); err != nil {
				return fmt.Errorf("adoption of %s on %s: %w", d.AppID, d.Day.Format(time.DateOnly), err)
			}
		}
		// Keys sort by app, then day: the old days of each app are a run.
		var old [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) < 9 || int64(binary.BigEndian.Uint64(k[len(k)-8:])) < keepFrom.Unix() {
				old = append(old, append([]byte(nil), k...))
			}
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save adoption of %d days: %w", len(days), err)
	}
	return nil
}

// LoadAdoption reads the stored days from since on, oldest first.
func (s *Store) LoadAdoption(ctx context.Context, since time.Time) ([]store.AdoptionDay, error) {
	var out []store.AdoptionDay
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bAdoption)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) < 9 {
				return nil
			}
			day := time.Unix(int64(binary.BigEndian.Uint64(k[len(k)-8:])), 0).UTC()
			if day.Before(since) {
				return nil
			}
			var r adoptionRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode adoption %q: %w", k, err)
			}
			out = append(out, store.AdoptionDay{AppID: string(k[:len(k)-9]), Day: day, Counts: r.Counts})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load adoption: %w", err)
	}
	sortDays(out)
	return out, nil
}

func sortDays(ds []store.AdoptionDay) {
	slices.SortFunc(ds, func(a, b store.AdoptionDay) int {
		return cmp.Or(a.Day.Compare(b.Day), cmp.Compare(a.AppID, b.AppID))
	})
}

// leaders are the names led through this store: bbolt's file lock keeps
// every other process (and every other Store of the file) out, so
// leadership is a matter of one Store's callers.
type leaders struct {
	mu    sync.Mutex
	names map[string]bool
}

// boltLease is leadership of one name; it is never lost.
type boltLease struct {
	l    *leaders
	name string
	once sync.Once
}

func (l *boltLease) Lost() <-chan struct{} { return nil }

func (l *boltLease) Release() {
	l.once.Do(func() {
		l.l.mu.Lock()
		delete(l.l.names, l.name)
		l.l.mu.Unlock()
	})
}

// Lead hands name's leadership to one caller at a time.
func (s *Store) Lead(_ context.Context, name string) (store.Lease, bool, error) {
	s.leaders.mu.Lock()
	defer s.leaders.mu.Unlock()
	if s.leaders.names[name] {
		return nil, false, nil
	}
	if s.leaders.names == nil {
		s.leaders.names = map[string]bool{}
	}
	s.leaders.names[name] = true
	return &boltLease{l: &s.leaders, name: name}, true, nil
}
