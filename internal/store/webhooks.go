package store

import (
	"context"

	"github.com/otaship/ota/pkg/ota"
)

// StoredWebhook is a webhook with the secret it signs its payloads with.
// The secret must stay in the store: otad needs it for every delivery.
type StoredWebhook struct {
	ota.Webhook
	Secret string `json:"secret"`
}

// WebhookStore keeps webhooks and their delivery logs.
type WebhookStore interface {
	// CreateWebhook stores w; ErrConflict when its ID exists.
	CreateWebhook(ctx context.Context, w StoredWebhook) error
	// ListWebhooks returns every webhook, oldest first.
	ListWebhooks(ctx context.Context) ([]StoredWebhook, error)
	// GetWebhook returns one webhook; ErrNotFound when missing.
	GetWebhook(ctx context.Context, id string) (StoredWebhook, error)
	// DeleteWebhook removes a webhook and its delivery log; ErrNotFound
	// when missing.
	DeleteWebhook(ctx context.Context, id string) error
	// AppendDelivery adds an attempt to the webhook's delivery log, keeping
	// the newest keep entries. A delivery of a deleted webhook is dropped.
	AppendDelivery(ctx context.Context, d ota.WebhookDelivery, keep int) error
	// Deliveries returns up to limit entries of the log, newest first;
	// ErrNotFound when the webhook does not exist.
	Deliveries(ctx context.Context, webhookID string, limit int) ([]ota.WebhookDelivery, error)
}
