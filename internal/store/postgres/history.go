package postgres

import (
	"context"
	"fmt"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// History page sizes, as in the embedded store.
const (
	defaultHistoryLimit = 50
	maxHistoryLimit     = 500
)

// pendingEvent is an event waiting for its sequence number.
type pendingEvent struct {
	ev  ota.Event
	raw []byte
}

// appendEvent records ev in the app's history when the transaction
// commits. It is encoded now, so a record that cannot be stored fails the
// write before anything is numbered.
func (a *appTx) appendEvent(ev ota.Event) error {
	ev.AppID = a.id()
	ev.Seq = 0
	raw, err := encode("event", ev)
	if err != nil {
		return err
	}
	a.t.events = append(a.t.events, pendingEvent{ev: ev, raw: raw})
	return nil
}

// flushEvents numbers the transaction's events and inserts them. It runs
// last before the commit: the counter row it updates stays locked until
// then, so the next writer's numbers start after these and its commit
// comes after this one (see the package comment).
func (t *txn) flushEvents(ctx context.Context) error {
	n := len(t.events)
	if n == 0 {
		return nil
	}
	apps, channels, records := make([]string, n), make([]string, n), make([]string, n)
	for i, p := range t.events {
		apps[i], channels[i], records[i] = p.ev.AppID, p.ev.Channel, string(p.raw)
	}
	// One statement: the counter moves by n and the events take the
	// numbers it moved over, each written into its record too.
	if _, err := t.Exec(ctx, `WITH c AS (UPDATE history_counter SET seq = seq + $1 RETURNING seq)
		INSERT INTO events (seq, app_id, channel, record)
		SELECT c.seq - $1 + e.ord, e.app_id, e.channel, jsonb_set(e.record::jsonb, '{seq}', to_jsonb(c.seq - $1 + e.ord))
		FROM c, unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS e (app_id, channel, record, ord)`,
		n, apps, channels, records); err != nil {
		return fmt.Errorf("write %d events: %w", n, err)
	}
	t.events = nil
	return nil
}

// History returns a page of events, newest first. Each filter has an
// index ending in seq, so a page is a short index scan however long the
// history is.
func (s *Store) History(ctx context.Context, q store.HistoryQuery) ([]ota.Event, uint64, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultHistoryLimit
	}
	limit = min(limit, maxHistoryLimit)
	if q.AppID == "" && q.Channel != "" {
		return nil, 0, fmt.Errorf("history of channel %q: name its app too: %w", q.Channel, store.ErrInvalid)
	}
	before := int64(1<<63 - 1)
	if q.Before > 0 && q.Before < uint64(before) {
		before = int64(q.Before)
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	// No transaction: apps and channels are never removed, so the checks
	// cannot be undone before the page is read.
	var out []ota.Event
	err := func(db querier) error {
		var (
			sql  string
			args []any
		)
		switch {
		case q.AppID == "":
			sql, args = "SELECT seq, record FROM events WHERE seq < $1 ORDER BY seq DESC LIMIT $2", []any{before, limit + 1}
		case q.Channel == "":
			if err := appExists(ctx, db, q.AppID); err != nil {
				return err
			}
			// -seq: see the indexes in migrations/0001_initial.sql.
			sql = "SELECT seq, record FROM events WHERE app_id = $1 AND -seq > $2 ORDER BY -seq LIMIT $3"
			args = []any{q.AppID, -before, limit + 1}
		default:
			if err := appExists(ctx, db, q.AppID); err != nil {
				return err
			}
			if err := checkName("channel", q.Channel); err != nil {
				return err
			}
			if _, err := loadChannel(ctx, db, q.AppID, q.Channel); err != nil {
				return err
			}
			sql = "SELECT seq, record FROM events WHERE app_id = $1 AND channel = $2 AND -seq > $3 ORDER BY -seq LIMIT $4"
			args = []any{q.AppID, q.Channel, -before, limit + 1}
		}
		rows, err := db.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				seq int64
				raw []byte
				ev  ota.Event
			)
			if err := rows.Scan(&seq, &raw); err != nil {
				return err
			}
			if err := decode(fmt.Sprintf("event %d", seq), raw, &ev); err != nil {
				return err
			}
			ev.Seq = uint64(seq)
			out = append(out, ev)
		}
		return rows.Err()
	}(s.db())
	if err != nil {
		return nil, 0, fmt.Errorf("read history: %w", dbErr(ctx, err))
	}
	var next uint64
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].Seq
	}
	if out == nil {
		out = []ota.Event{}
	}
	return out, next, nil
}

// appExists is nil for an existing app, ErrNotFound naming it otherwise.
func appExists(ctx context.Context, db querier, appID string) error {
	if err := checkName("app id", appID); err != nil {
		return err
	}
	var ok bool
	if err := db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM apps WHERE id = $1)", appID).Scan(&ok); err != nil {
		return fmt.Errorf("look up app %q: %w", appID, err)
	}
	if !ok {
		return fmt.Errorf("app %q: %w", appID, store.ErrNotFound)
	}
	return nil
}
