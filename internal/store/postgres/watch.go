package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otaship/ota/internal/store"
)

// SaveAdoption stores adoption days, one row per app and day, replacing
// those of the same key, and removes the days before keepFrom.
func (s *Store) SaveAdoption(ctx context.Context, days []store.AdoptionDay, keepFrom time.Time) error {
	apps := make([]string, 0, len(days))
	for _, d := range days {
		apps = append(apps, d.AppID)
	}
	err := s.write(ctx, func(t *txn) error {
		known, err := knownApps(ctx, t, apps)
		if err != nil {
			return err
		}
		for _, d := range days {
			if !known[d.AppID] {
				continue
			}
			raw, err := json.Marshal(d.Counts)
			if err != nil {
				return err
			}
			if _, err := t.Exec(ctx, `INSERT INTO adoption (app_id, day, counts) VALUES ($1, $2, $3)
				ON CONFLICT (app_id, day) DO UPDATE SET counts = excluded.counts`,
				d.AppID, d.Day.UTC().Format(time.DateOnly), raw); err != nil {
				return fmt.Errorf("adoption of %s on %s: %w", d.AppID, d.Day.Format(time.DateOnly), err)
			}
		}
		_, err = t.Exec(ctx, "DELETE FROM adoption WHERE day < $1", keepFrom.UTC().Format(time.DateOnly))
		return err
	})
	if err != nil {
		return fmt.Errorf("save adoption of %d days: %w", len(days), dbErr(ctx, err))
	}
	return nil
}

// LoadAdoption reads the stored days from since on, oldest first.
func (s *Store) LoadAdoption(ctx context.Context, since time.Time) ([]store.AdoptionDay, error) {
	var out []store.AdoptionDay
	err := s.read(ctx, func(db querier) error {
		out = nil
		rows, err := db.Query(ctx, `SELECT app_id, day::text, counts FROM adoption WHERE day >= $1::date ORDER BY day, app_id`,
			since.UTC().Format(time.DateOnly))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				d        store.AdoptionDay
				day, raw = "", []byte(nil)
			)
			if err := rows.Scan(&d.AppID, &day, &raw); err != nil {
				return err
			}
			if d.Day, err = time.Parse(time.DateOnly, day); err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &d.Counts); err != nil {
				return fmt.Errorf("decode adoption of %s on %s: %w", d.AppID, day, err)
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("load adoption: %w", dbErr(ctx, err))
	}
	return out, nil
}

// leadNamespace is the first key of otad's leadership advisory locks
// ("otad" in ASCII); the second is a hash of the name.
const leadNamespace int32 = 0x6f746164

// leadPing is how often a held lease checks its connection.
const leadPing = 5 * time.Second

// pgLease holds a session-level advisory lock on a connection taken out
// of the pool for it: the lock lives as long as that connection.
type pgLease struct {
	mu   sync.Mutex
	conn *pgx.Conn
	key  int32
	lost chan struct{}
	stop chan struct{}
	once sync.Once
}

// Lead takes the advisory lock of name with pg_try_advisory_lock on a
// dedicated connection: one process of all those sharing the database
// holds it, until it releases it or its connection breaks.
func (s *Store) Lead(ctx context.Context, name string) (store.Lease, bool, error) {
	if s.snap != nil {
		return nil, false, fmt.Errorf("lead %s: a read-only view of the database: %w", name, store.ErrInvalid)
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lead %s: %w", name, dbErr(ctx, err))
	}
	conn := pc.Hijack()
	h := fnv.New32a()
	h.Write([]byte(name))
	key := int32(h.Sum32())
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", leadNamespace, key).Scan(&ok); err != nil || !ok {
		_ = conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, false, fmt.Errorf("lead %s: %w", name, dbErr(ctx, err))
		}
		return nil, false, nil
	}
	l := &pgLease{conn: conn, key: key, lost: make(chan struct{}), stop: make(chan struct{})}
	go l.watch()
	return l, true, nil
}

// watch closes lost when the connection stops answering.
func (l *pgLease) watch() {
	t := time.NewTicker(leadPing)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), leadPing)
		l.mu.Lock()
		err := l.conn.Ping(ctx)
		l.mu.Unlock()
		cancel()
		if err != nil {
			close(l.lost)
			l.release()
			return
		}
	}
}

func (l *pgLease) Lost() <-chan struct{} { return l.lost }

func (l *pgLease) Release() {
	l.once.Do(func() { close(l.stop) })
	l.release()
}

func (l *pgLease) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Closing the session frees its locks; the unlock is for a server
	// that keeps the connection a moment longer.
	_, _ = l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", leadNamespace, l.key)
	_ = l.conn.Close(ctx)
	l.conn = nil
}
