package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/store/bolt/bolttest"
	"github.com/otaship/ota/pkg/ota"
)

func TestWebhooks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ota.db")
	s := bolttest.Open(t, path, bolt.Options{})

	// A fresh file has no webhook buckets: reads see nothing, not an error.
	if ws, err := s.ListWebhooks(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("list on a fresh file = %v, %v", ws, err)
	}
	if _, err := s.Deliveries(ctx, "wh1", 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deliveries of a missing webhook: %v, want ErrNotFound", err)
	}
	if err := s.DeleteWebhook(ctx, "wh1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete of a missing webhook: %v, want ErrNotFound", err)
	}
	w1 := store.StoredWebhook{Secret: "s1", Webhook: ota.Webhook{ID: "wh1", URL: "https://a.example/h", CreatedAt: epoch.Add(time.Minute)}}
	w2 := store.StoredWebhook{Secret: "s2", Webhook: ota.Webhook{ID: "wh0", URL: "https://b.example/h", AppID: "app",
		Events: []string{ota.EventHalt}, CreatedAt: epoch}}
	for _, w := range []store.StoredWebhook{w1, w2} {
		if err := s.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateWebhook(ctx, w1); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second create of wh1: %v, want ErrConflict", err)
	}
	ws, err := s.ListWebhooks(ctx)
	if err != nil || len(ws) != 2 || ws[0].ID != "wh0" || ws[1].ID != "wh1" || ws[0].Secret != "s2" || ws[0].Events[0] != ota.EventHalt {
		t.Fatalf("list = %+v, %v; want wh0 then wh1 (creation order) with secrets", ws, err)
	}

	const keep = 3
	for i := 1; i <= 5; i++ {
		d := ota.WebhookDelivery{WebhookID: "wh1", EventID: fmt.Sprint(i), Attempt: 1, Time: epoch, Status: 500 + i}
		if err := s.AppendDelivery(ctx, d, keep); err != nil {
			t.Fatal(err)
		}
	}
	// A delivery for a webhook deleted meanwhile is dropped, not an error.
	if err := s.AppendDelivery(ctx, ota.WebhookDelivery{WebhookID: "gone"}, keep); err != nil {
		t.Errorf("delivery of a deleted webhook: %v", err)
	}
	ds, err := s.Deliveries(ctx, "wh1", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.EventID)
	}
	if fmt.Sprint(ids) != "[5 4 3]" || ds[0].Status != 505 || ds[0].WebhookID != "wh1" {
		t.Errorf("log = %v (%+v), want the newest 3, newest first", ids, ds[0])
	}

	// Webhooks and logs survive a reopen; delete removes both.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = bolttest.Open(t, path, bolt.Options{})
	if got, err := s.GetWebhook(ctx, "wh1"); err != nil || got.Secret != "s1" || got.URL != w1.URL {
		t.Errorf("get after reopen = %+v, %v", got, err)
	}
	if err := s.DeleteWebhook(ctx, "wh1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetWebhook(ctx, "wh1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get after delete: %v, want ErrNotFound", err)
	}
	if err := s.CreateWebhook(ctx, w1); err != nil {
		t.Fatal(err)
	}
	if ds, err := s.Deliveries(ctx, "wh1", 0); err != nil || len(ds) != 0 {
		t.Errorf("log of a re-created webhook = %v, %v; want it empty", ds, err)
	}
}
