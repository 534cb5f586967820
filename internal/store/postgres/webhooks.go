package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// CreateWebhook stores a webhook; ErrConflict when the id is taken.
func (s *Store) CreateWebhook(ctx context.Context, w store.StoredWebhook) error {
	if err := checkName("webhook id", w.ID); err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	if w.CreatedAt.IsZero() {
		w.CreatedAt = time.Now()
	}
	w.CreatedAt = norm(w.CreatedAt)
	raw, err := encode("webhook", w)
	if err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	err = s.write(ctx, func(t *txn) error {
		tag, err := t.Exec(ctx, "INSERT INTO webhooks (id, record) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", w.ID, raw)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("webhook %q already exists: %w", w.ID, store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	return nil
}

// ListWebhooks returns every webhook, oldest first.
func (s *Store) ListWebhooks(ctx context.Context) ([]store.StoredWebhook, error) {
	var out []store.StoredWebhook
	err := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := s.db().Query(ctx, "SELECT id, record FROM webhooks ORDER BY id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id  string
				raw []byte
				w   store.StoredWebhook
			)
			if err := rows.Scan(&id, &raw); err != nil {
				return err
			}
			if err := decode("webhook "+id, raw, &w); err != nil {
				return err
			}
			w.ID = id
			out = append(out, w)
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", dbErr(ctx, err))
	}
	// Ids are random, so key order is not creation order.
	slices.SortStableFunc(out, func(a, b store.StoredWebhook) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// GetWebhook returns one webhook; ErrNotFound when missing.
func (s *Store) GetWebhook(ctx context.Context, id string) (store.StoredWebhook, error) {
	var w store.StoredWebhook
	err := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var raw []byte
		err := s.db().QueryRow(ctx, "SELECT record FROM webhooks WHERE id = $1", id).Scan(&raw)
		if noRows(err) {
			return fmt.Errorf("webhook %q: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := decode("webhook "+id, raw, &w); err != nil {
			return err
		}
		w.ID = id
		return nil
	}()
	if err != nil {
		return store.StoredWebhook{}, fmt.Errorf("get webhook: %w", dbErr(ctx, err))
	}
	return w, nil
}

// DeleteWebhook removes a webhook and, by cascade, its delivery log.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	err := s.write(ctx, func(t *txn) error {
		tag, err := t.Exec(ctx, "DELETE FROM webhooks WHERE id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("webhook %q: %w", id, store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	return nil
}

// AppendDelivery adds an attempt to a webhook's log and drops the oldest
// entries beyond keep. The webhook's row is locked meanwhile, so
// concurrent appends (from several replicas) trim one after the other.
func (s *Store) AppendDelivery(ctx context.Context, d ota.WebhookDelivery, keep int) error {
	if keep < 1 {
		keep = 1
	}
	d.Time = norm(d.Time)
	// A transport error's text is the one free-form field here; jsonb
	// cannot hold NUL, and the log must not fail over it.
	d.Error = strings.ReplaceAll(strings.ToValidUTF8(d.Error, "\uFFFD"), "\x00", "\uFFFD")
	raw, err := encode("delivery", d)
	if err != nil {
		return fmt.Errorf("log delivery to webhook %q: %w", d.WebhookID, err)
	}
	err = s.write(ctx, func(t *txn) error {
		var one int
		err := t.QueryRow(ctx, "SELECT 1 FROM webhooks WHERE id = $1 FOR UPDATE", d.WebhookID).Scan(&one)
		if noRows(err) {
			return nil // deleted while the delivery ran
		}
		if err != nil {
			return err
		}
		if _, err := t.Exec(ctx, "INSERT INTO webhook_deliveries (webhook_id, record) VALUES ($1, $2)", d.WebhookID, raw); err != nil {
			return err
		}
		_, err = t.Exec(ctx, `DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND seq <= (
			SELECT seq FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY seq DESC OFFSET $2 LIMIT 1)`, d.WebhookID, keep)
		return err
	})
	if err != nil {
		return fmt.Errorf("log delivery to webhook %q: %w", d.WebhookID, err)
	}
	return nil
}

// Deliveries returns the newest limit entries of a webhook's log (every
// entry when limit <= 0).
func (s *Store) Deliveries(ctx context.Context, webhookID string, limit int) ([]ota.WebhookDelivery, error) {
	var out []ota.WebhookDelivery
	err := s.read(ctx, func(db querier) error {
		out = nil
		var ok bool
		if err := db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = $1)", webhookID).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("webhook %q: %w", webhookID, store.ErrNotFound)
		}
		sql, args := "SELECT record FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY seq DESC", []any{webhookID}
		if limit > 0 {
			sql += " LIMIT $2"
			args = append(args, limit)
		}
		rows, err := db.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				raw []byte
				d   ota.WebhookDelivery
			)
			if err := rows.Scan(&raw); err != nil {
				return err
			}
			if err := decode("delivery", raw, &d); err != nil {
				return err
			}
			d.WebhookID = webhookID
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("webhook deliveries: %w", dbErr(ctx, err))
	}
	return out, nil
}
