// Package webhook delivers otad's release events to registered HTTP
// receivers: a JSON POST signed with HMAC-SHA256 under the webhook's
// secret, retried with exponential backoff, each attempt recorded in the
// webhook's delivery log.
//
// Deliveries wait in memory only. Events of writes acknowledged just
// before a crash or shutdown may never be delivered; receivers that must
// not miss one can reconcile against GET /api/v1/history, whose sequence
// numbers are the payload ids.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/version"
	"github.com/otaship/ota/pkg/ota"
)

// Store is what the dispatcher needs of the metadata store.
type Store interface {
	ListWebhooks(ctx context.Context) ([]store.StoredWebhook, error)
	AppendDelivery(ctx context.Context, d ota.WebhookDelivery, keep int) error
}

// Options tune a Dispatcher. The zero value is usable.
type Options struct {
	// Client sends the requests; nil means a client that follows no
	// redirects (a 3xx is a failed attempt: the receiver must be named
	// exactly) and, unless AllowPrivate, connects to public addresses only.
	Client *http.Client
	// AllowPrivate lets webhooks reach loopback, private, link-local and
	// other non-public addresses (otad --webhook-allow-private). Without
	// it CheckTarget refuses them when a webhook is added, and every
	// delivery refuses to connect to one, whatever the name resolves to.
	AllowPrivate bool
	// LookupIP resolves names for CheckTarget (default: the system's
	// resolver).
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
	// Workers is the number of concurrent deliveries (default 2).
	Workers int
	// QueueSize bounds the deliveries waiting or backing off (default
	// 1000); beyond it new ones are dropped and logged.
	QueueSize int
	// MaxAttempts is the number of tries of one delivery (default 6:
	// about half a minute of retries with the default delays).
	MaxAttempts int
	// BaseDelay is the wait before the second attempt (default 1s); each
	// further wait doubles, up to MaxDelay (default 5m).
	BaseDelay, MaxDelay time.Duration
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// KeepDeliveries is the length of each webhook's delivery log (default 100).
	KeepDeliveries int
	// Now is the clock; Sleep waits d or until ctx ends. Tests replace them.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// OnAttempt, when set, sees every attempt (for metrics).
	OnAttempt func(ota.WebhookDelivery)
	Log       *slog.Logger
}

// Defaults of Options.
const (
	DefaultWorkers        = 2
	DefaultQueueSize      = 1000
	DefaultMaxAttempts    = 6
	DefaultBaseDelay      = time.Second
	DefaultMaxDelay       = 5 * time.Minute
	DefaultTimeout        = 10 * time.Second
	DefaultKeepDeliveries = 100
	// maxResponseBytes of a receiver's answer are read (and discarded) so
	// the connection can be reused.
	maxResponseBytes = 64 << 10
)

// job is one payload on its way to one webhook.
type job struct {
	hook    store.StoredWebhook
	payload ota.WebhookPayload
	body    []byte
	attempt int // attempts made so far
}

// Dispatcher queues and sends deliveries. Its workers start with the first
// delivery, so a server without webhooks runs no goroutines for them.
type Dispatcher struct {
	st      Store
	o       Options
	queue   chan job
	pending atomic.Int64 // queued + backing off
	start   sync.Once
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // workers and backoff waits
	closed  atomic.Bool
}

// New returns a dispatcher over st.
func New(st Store, o Options) *Dispatcher {
	if o.Client == nil {
		o.Client = defaultClient(o.AllowPrivate)
	}
	if o.LookupIP == nil {
		o.LookupIP = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = DefaultBaseDelay
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.KeepDeliveries <= 0 {
		o.KeepDeliveries = DefaultKeepDeliveries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{st: st, o: o, queue: make(chan job, o.QueueSize), ctx: ctx, cancel: cancel}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the workers and abandons queued deliveries and retries (see
// the package comment). It waits for attempts in flight, each at most
// Options.Timeout.
func (d *Dispatcher) Close() {
	d.closed.Store(true)
	d.cancel()
	d.wg.Wait()
}

// Backoff is the wait after attempt n (1-based) failed.
func (d *Dispatcher) Backoff(n int) time.Duration {
	w := d.o.BaseDelay
	for i := 1; i < n && w < d.o.MaxDelay; i++ {
		w *= 2
	}
	return min(w, d.o.MaxDelay)
}

// Dispatch queues ev for every webhook that wants it. It never blocks: a
// full queue drops the delivery with a log line.
func (d *Dispatcher) Dispatch(ctx context.Context, ev ota.Event) error {
	if d.closed.Load() {
		return errors.New("webhook dispatcher is closed")
	}
	hooks, err := d.st.ListWebhooks(ctx)
	if err != nil {
		return fmt.Errorf("list webhooks for event %d: %w", ev.Seq, err)
	}
	p := PayloadOf(ev)
	var body []byte
	for _, h := range hooks {
		if !Wants(h.Webhook, ev) {
			continue
		}
		if body == nil {
			if body, err = json.Marshal(p); err != nil {
				return fmt.Errorf("encode event %d: %w", ev.Seq, err)
			}
		}
		d.enqueue(job{hook: h, payload: p, body: body})
	}
	return nil
}

func (d *Dispatcher) enqueue(j job) {
	d.start.Do(func() {
		for range d.o.Workers {
			d.wg.Add(1)
			go d.work()
		}
	})
	if d.pending.Add(1) > int64(d.o.QueueSize) {
		d.pending.Add(-1)
		d.o.Log.Error("webhook queue full; delivery dropped", "webhook", j.hook.ID, "event_id", j.payload.ID,
			"event", j.payload.Type, "queue_size", d.o.QueueSize)
		return
	}
	// pending bounds the channel's length, so this send does not block.
	d.queue <- j
}

func (d *Dispatcher) work() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case j := <-d.queue:
			d.pending.Add(-1)
			d.attempt(j)
		}
	}
}

// attempt sends j once and schedules the next attempt when it failed.
func (d *Dispatcher) attempt(j job) {
	j.attempt++
	// The attempt does not use d.ctx: Close lets it finish (within the
	// timeout) so its outcome is logged.
	del := d.send(context.Background(), j)
	if del.OK || j.attempt >= d.o.MaxAttempts || d.ctx.Err() != nil {
		if !del.OK {
			d.o.Log.Warn("webhook delivery failed for good", "webhook", j.hook.ID, "event_id", j.payload.ID,
				"attempts", j.attempt, "status", del.Status, "err", del.Error)
		}
		return
	}
	// The wait runs outside the workers, so one dead receiver does not
	// hold up the others; pending still counts it.
	d.pending.Add(1)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.o.Sleep(d.ctx, d.Backoff(j.attempt)); err != nil {
			d.pending.Add(-1)
			return
		}
		select {
		case d.queue <- j:
		case <-d.ctx.Done():
			d.pending.Add(-1)
		}
	}()
}

// Send makes one attempt to deliver p to h now and logs it, for
// "otactl webhook test".
func (d *Dispatcher) Send(ctx context.Context, h store.StoredWebhook, p ota.WebhookPayload) (ota.WebhookDelivery, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return ota.WebhookDelivery{}, fmt.Errorf("encode test event: %w", err)
	}
	return d.send(ctx, job{hook: h, payload: p, body: body, attempt: 1}), nil
}

// send makes one attempt and records it in the delivery log.
func (d *Dispatcher) send(ctx context.Context, j job) ota.WebhookDelivery {
	start := d.o.Now()
	del := ota.WebhookDelivery{WebhookID: j.hook.ID, EventID: j.payload.ID, EventType: j.payload.Type,
		Attempt: j.attempt, Time: start}
	status, err := d.post(ctx, j)
	del.DurationMS = d.o.Now().Sub(start).Milliseconds()
	del.Status = status
	switch {
	case err != nil:
		del.Error = attemptError(err)
		d.o.Log.Info("webhook attempt failed", "webhook", j.hook.ID, "event_id", j.payload.ID, "attempt", j.attempt, "err", err)
	case status < 200 || status > 299:
		del.Error = "receiver answered " + strconv.Itoa(status) + " " + http.StatusText(status)
	default:
		del.OK = true
	}
	// The log is written even when ctx ended: the attempt happened.
	if err := d.st.AppendDelivery(context.WithoutCancel(ctx), del, d.o.KeepDeliveries); err != nil {
		d.o.Log.Error("webhook delivery not logged", "webhook", j.hook.ID, "event_id", j.payload.ID, "err", err)
	}
	if d.o.OnAttempt != nil {
		d.o.OnAttempt(del)
	}
	return del
}

func (d *Dispatcher) post(ctx context.Context, j job) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.hook.URL, bytes.NewReader(j.body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "otad-webhook/"+version.Info().Version)
	req.Header.Set(ota.WebhookSignatureHeader, Sign(j.hook.Secret, j.body))
	req.Header.Set("X-Otad-Event", j.payload.Type)
	req.Header.Set("X-Otad-Delivery", j.payload.ID)
	resp, err := d.o.Client.Do(req)
	if err != nil {
		// The URL may carry credentials in its query; url.Error prints
		// it, so only the cause is kept.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("post to receiver: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	return resp.StatusCode, nil
}

// Sign is the X-Otad-Signature value of body: "sha256=" and the hex
// HMAC-SHA256 of the raw body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature under secret, in constant
// time. Receivers written in Go can use it.
func Verify(secret string, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}

// PayloadOf builds the webhook body of a history event.
func PayloadOf(ev ota.Event) ota.WebhookPayload {
	return ota.WebhookPayload{ID: strconv.FormatUint(ev.Seq, 10), Type: ev.Type, Time: ev.Time, AppID: ev.AppID,
		Channel: ev.Channel, Version: ev.Version, From: ev.From, To: ev.To, Actor: ev.Actor, Note: ev.Note}
}

// Wants reports whether w subscribes to ev: its app filter matches and the
// type is in its event filter (or, without one, in ota.WebhookEventTypes).
func Wants(w ota.Webhook, ev ota.Event) bool {
	if w.AppID != "" && w.AppID != ev.AppID {
		return false
	}
	types := w.Events
	if len(types) == 0 {
		types = ota.WebhookEventTypes
	}
	return slices.Contains(types, ev.Type)
}

// Subscribable are the event types a webhook may name in its filter.
var Subscribable = []string{ota.EventUpload, ota.EventActivate, ota.EventRollback, ota.EventPromote, ota.EventDelete,
	ota.EventHalt, ota.EventRollout, ota.EventPolicy, ota.EventDefault, ota.EventOverride, ota.EventRampHold}

// CheckURL accepts absolute http and https URLs only.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("webhook URL is not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("webhook URL must start with http:// or https://, not %q", u.Scheme+":")
	}
	if u.Host == "" {
		return errors.New("webhook URL has no host")
	}
	if len(raw) > 2048 {
		return errors.New("webhook URL is longer than 2048 characters")
	}
	return nil
}

// CheckEvents validates an event filter.
func CheckEvents(types []string) error {
	for _, t := range types {
		if !slices.Contains(Subscribable, t) {
			return fmt.Errorf("unknown event type %q; use %s", t, strings.Join(Subscribable, ", "))
		}
	}
	return nil
}

// NewSecret returns a random secret for a webhook created without one.
func NewSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate webhook secret: %w", err)
	}
	return "whsec_" + hex.EncodeToString(b), nil
}

// NewID returns a random webhook id.
func NewID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate webhook id: %w", err)
	}
	return "wh_" + hex.EncodeToString(b), nil
}
