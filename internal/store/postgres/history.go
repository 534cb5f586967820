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
	var last int64
	if err := t.QueryRow(ctx, "UPDATE history_counter SET seq = seq + $1 RETURNING seq", n).Scan(&last); err != nil {
		return fmt.Errorf("number events: %w", err)
	}
	for i, p := range t.events {
		seq := last - int64(n) + int64(i) + 1
		p.ev.Seq = uint64(seq)
		raw, err := encode("event", p.ev)
		if err != nil {
			return err
		}
		if _, err := t.Exec(ctx, "INSERT INTO events (seq, app_id, channel, record) VALUES ($1, $2, $3, $4)",
			seq, p.ev.AppID, p.ev.Channel, raw); err != nil {
			return fmt.Errorf("write event %d: %w", seq, err)
		}
	}
	t.events = nil
	return nil
}

// History returns a page of events, newest first. Each filter has an
// index ending in seq, so a page is a short backward index scan however
// long the history is.
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
			sql = "SELECT seq, record FROM events WHERE app_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
			args = []any{q.AppID, before, limit + 1}
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
			sql = "SELECT seq, record FROM events WHERE app_id = $1 AND channel = $2 AND seq < $3 ORDER BY seq DESC LIMIT $4"
			args = []any{q.AppID, q.Channel, before, limit + 1}
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
