package ota

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Webhook event types a webhook may subscribe to, besides the history
// event types above. EventTest is only sent by POST .../webhooks/{id}/test.
const EventTest = "test"

// WebhookEventTypes are the history event types webhooks are sent for when
// a webhook names no filter.
var WebhookEventTypes = []string{EventUpload, EventActivate, EventRollback, EventPromote, EventDelete, EventHalt, EventRampHold}

// WebhookSignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the
// raw request body under the webhook's secret.
const WebhookSignatureHeader = "X-Otad-Signature"

// Webhook is a registered receiver of release events. Its secret is never
// part of it: the server shows the secret once, in WebhookCreated.
type Webhook struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// AppID, when set, limits the webhook to that app's events.
	AppID string `json:"app_id,omitempty"`
	// Events, when set, limits the webhook to these event types.
	Events    []string  `json:"events,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// WebhookRequest is the body of POST /api/v1/webhooks. An empty Secret
// makes the server generate one.
type WebhookRequest struct {
	URL    string   `json:"url"`
	Secret string   `json:"secret,omitempty"`
	AppID  string   `json:"app_id,omitempty"`
	Events []string `json:"events,omitempty"`
}

// WebhookCreated answers a creation: the webhook and its secret, which is
// never shown again.
type WebhookCreated struct {
	Webhook
	Secret string `json:"secret"`
}

// WebhookPayload is the JSON body POSTed to a webhook, built from a history
// event. ID is unique per event (the history sequence number, or "test-…"),
// so a receiver can drop the duplicates a retry may cause.
type WebhookPayload struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	AppID   string    `json:"app_id"`
	Channel string    `json:"channel,omitempty"`
	Version string    `json:"version,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	Actor   string    `json:"actor,omitempty"`
	Note    string    `json:"note,omitempty"`
}

// WebhookDelivery is one attempt to deliver one event to one webhook.
// Status is the receiver's HTTP status (0 when none came back); Error says
// why the attempt failed, empty on success.
type WebhookDelivery struct {
	WebhookID  string    `json:"webhook_id"`
	EventID    string    `json:"event_id"`
	EventType  string    `json:"event_type"`
	Attempt    int       `json:"attempt"`
	Time       time.Time `json:"time"`
	Status     int       `json:"status,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
	OK         bool      `json:"ok"`
}

// CreateWebhook registers a webhook. The answer holds its secret, which
// the server never shows again.
func (c *Client) CreateWebhook(ctx context.Context, req WebhookRequest) (WebhookCreated, error) {
	var out WebhookCreated
	err := c.doJSON(ctx, http.MethodPost, "/api/v1/webhooks", nil, req, &out)
	return out, err
}

// Webhooks lists the registered webhooks, without their secrets.
func (c *Client) Webhooks(ctx context.Context) ([]Webhook, error) {
	var out []Webhook
	err := c.doJSON(ctx, http.MethodGet, "/api/v1/webhooks", nil, nil, &out)
	return out, err
}

// DeleteWebhook removes a webhook and its delivery log.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodDelete, "/api/v1/webhooks/"+url.PathEscape(id), nil, nil, nil)
}

// TestWebhook makes the server send a test event to the webhook now and
// returns the attempt.
func (c *Client) TestWebhook(ctx context.Context, id string) (WebhookDelivery, error) {
	var out WebhookDelivery
	err := c.doJSON(ctx, http.MethodPost, "/api/v1/webhooks/"+url.PathEscape(id)+"/test", nil, nil, &out)
	return out, err
}

// WebhookDeliveries returns the newest entries of a webhook's delivery
// log (limit 0: the server's default).
func (c *Client) WebhookDeliveries(ctx context.Context, id string, limit int) ([]WebhookDelivery, error) {
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var out []WebhookDelivery
	err := c.doJSON(ctx, http.MethodGet, "/api/v1/webhooks/"+url.PathEscape(id)+"/deliveries", q, nil, &out)
	return out, err
}
