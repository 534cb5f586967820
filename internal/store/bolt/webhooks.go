package bolt

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Webhook buckets. They are not in the migration list: write transactions
// create them when missing, and reads treat a missing bucket as empty, so
// files from before webhooks existed need no migration.
//
//	webhooks     id → webhook (with its secret)
//	wdeliveries  id → bucket of Seq → delivery (the capped log)
var (
	bWebhooks    = []byte("webhooks")
	bWDeliveries = []byte("wdeliveries")
)

// webhookRecord is the stored form of a webhook.
type webhookRecord struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Secret    string    `json:"secret"`
	AppID     string    `json:"app_id,omitempty"`
	Events    []string  `json:"events,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func (r webhookRecord) wire() store.StoredWebhook {
	return store.StoredWebhook{Secret: r.Secret, Webhook: ota.Webhook{
		ID: r.ID, URL: r.URL, AppID: r.AppID, Events: r.Events, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt,
	}}
}

// deliveryRecord is the stored form of one delivery attempt.
type deliveryRecord struct {
	EventID    string    `json:"event_id"`
	EventType  string    `json:"event_type"`
	Attempt    int       `json:"attempt"`
	Time       time.Time `json:"time"`
	Status     int       `json:"status,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
	OK         bool      `json:"ok"`
}

// CreateWebhook stores a webhook; ErrConflict when the id is taken.
func (s *Store) CreateWebhook(ctx context.Context, w store.StoredWebhook) error {
	if err := checkName("webhook id", w.ID); err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	if w.CreatedAt.IsZero() {
		w.CreatedAt = time.Now()
	}
	rec := webhookRecord{ID: w.ID, URL: w.URL, Secret: w.Secret, AppID: w.AppID, Events: w.Events,
		CreatedBy: w.CreatedBy, CreatedAt: norm(w.CreatedAt)}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bWebhooks)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", bWebhooks, err)
		}
		if b.Get([]byte(w.ID)) != nil {
			return fmt.Errorf("webhook %q already exists: %w", w.ID, store.ErrConflict)
		}
		return put(b, []byte(w.ID), rec)
	})
	if err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	return nil
}

// ListWebhooks returns every webhook, oldest first.
func (s *Store) ListWebhooks(ctx context.Context) ([]store.StoredWebhook, error) {
	var out []store.StoredWebhook
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bWebhooks)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			var r webhookRecord
			if _, err := get(b, k, &r); err != nil {
				return fmt.Errorf("webhook %q: %w", k, err)
			}
			out = append(out, r.wire())
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	// Ids are random, so key order is not creation order.
	slices.SortStableFunc(out, func(a, b store.StoredWebhook) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// GetWebhook returns one webhook; ErrNotFound when missing.
func (s *Store) GetWebhook(ctx context.Context, id string) (store.StoredWebhook, error) {
	var r webhookRecord
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bWebhooks)
		ok := false
		var err error
		if b != nil {
			ok, err = get(b, []byte(id), &r)
		}
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("webhook %q: %w", id, store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return store.StoredWebhook{}, fmt.Errorf("get webhook: %w", err)
	}
	return r.wire(), nil
}

// DeleteWebhook removes a webhook and its delivery log.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bWebhooks)
		if b == nil || b.Get([]byte(id)) == nil {
			return fmt.Errorf("webhook %q: %w", id, store.ErrNotFound)
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		if d := tx.Bucket(bWDeliveries); d != nil && d.Bucket([]byte(id)) != nil {
			return d.DeleteBucket([]byte(id))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	return nil
}

// AppendDelivery adds an attempt to a webhook's log and drops the oldest
// entries beyond keep.
func (s *Store) AppendDelivery(ctx context.Context, d ota.WebhookDelivery, keep int) error {
	if keep < 1 {
		keep = 1
	}
	rec := deliveryRecord{EventID: d.EventID, EventType: d.EventType, Attempt: d.Attempt, Time: norm(d.Time),
		Status: d.Status, Error: d.Error, DurationMS: d.DurationMS, OK: d.OK}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		hooks := tx.Bucket(bWebhooks)
		if hooks == nil || hooks.Get([]byte(d.WebhookID)) == nil {
			return nil // deleted while the delivery ran
		}
		all, err := tx.CreateBucketIfNotExists(bWDeliveries)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", bWDeliveries, err)
		}
		b, err := all.CreateBucketIfNotExists([]byte(d.WebhookID))
		if err != nil {
			return fmt.Errorf("delivery log of %q: %w", d.WebhookID, err)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := put(b, itob(seq), rec); err != nil {
			return err
		}
		// Keys are big-endian sequence numbers, so the first keys are the
		// oldest. The log is at most keep+1 long, so counting is cheap.
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			keys = append(keys, k)
		}
		for _, k := range keys[:max(0, len(keys)-keep)] {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("trim delivery log: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("log delivery to webhook %q: %w", d.WebhookID, err)
	}
	return nil
}

// Deliveries returns the newest limit entries of a webhook's log.
func (s *Store) Deliveries(ctx context.Context, webhookID string, limit int) ([]ota.WebhookDelivery, error) {
	var out []ota.WebhookDelivery
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		hooks := tx.Bucket(bWebhooks)
		if hooks == nil || hooks.Get([]byte(webhookID)) == nil {
			return fmt.Errorf("webhook %q: %w", webhookID, store.ErrNotFound)
		}
		all := tx.Bucket(bWDeliveries)
		if all == nil {
			return nil
		}
		b := all.Bucket([]byte(webhookID))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Prev() {
			var r deliveryRecord
			if _, err := get(b, k, &r); err != nil {
				return fmt.Errorf("delivery %x: %w", k, err)
			}
			out = append(out, ota.WebhookDelivery{WebhookID: webhookID, EventID: r.EventID, EventType: r.EventType,
				Attempt: r.Attempt, Time: r.Time, Status: r.Status, Error: r.Error, DurationMS: r.DurationMS, OK: r.OK})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webhook deliveries: %w", err)
	}
	return out, nil
}
