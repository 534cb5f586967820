package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/webhook"
	"github.com/otaship/ota/pkg/ota"
)

// Webhook limits.
const (
	minWebhookSecret     = 16
	maxWebhookSecret     = 256
	defaultDeliveryLimit = 50
	maxDeliveryLimit     = 500
	eventScanPage        = 100
)

// initWebhooks sets up delivery and remembers the newest history event, so
// only events of later writes are sent.
func (s *Server) initWebhooks(ctx context.Context, o webhook.Options) error {
	if o.Log == nil {
		o.Log = s.log
	}
	if o.OnAttempt == nil && s.metrics != nil {
		o.OnAttempt = s.metrics.WebhookAttempt
	}
	s.hooks = webhook.New(s.store, o)
	evs, _, err := s.store.History(ctx, store.HistoryQuery{Limit: 1})
	if err != nil {
		return err
	}
	if len(evs) > 0 {
		s.hookSeq = evs[0].Seq
	}
	return nil
}

// Close stops webhook delivery; deliveries still queued are abandoned.
// It saves the device health and offers not saved yet.
func (s *Server) Close() {
	s.stopRelinking()
	s.closeWatch()
	s.hooks.Close()
	s.closeHealth()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.flushOffers(ctx); err != nil {
		s.log.Error("device offers not saved at shutdown", "err", err)
	}
	if err := s.flushAdoption(ctx, true); err != nil {
		s.log.Error("adoption counts not saved at shutdown", "err", err)
	}
}

// emitEvents hands every history event newer than the last one emitted to
// the webhook dispatcher. refreshApp calls it after each write, under
// writeMu: history sequence numbers follow commit order, so reading from
// the last emitted number sends each acknowledged write's events exactly
// once, whichever of two concurrent writers gets here first. On a read
// error nothing is skipped: the next write picks the events up.
func (s *Server) emitEvents(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	var fresh []ota.Event
	q := store.HistoryQuery{Limit: eventScanPage}
scan:
	for {
		page, next, err := s.store.History(ctx, q)
		if err != nil {
			s.log.Error("webhooks: read new history events; they go out after the next write", "err", err)
			return
		}
		for _, ev := range page {
			if ev.Seq <= s.hookSeq {
				break scan
			}
			fresh = append(fresh, ev)
		}
		if next == 0 {
			break
		}
		q.Before = next
	}
	// Oldest first, so receivers see changes in the order they happened.
	for i := len(fresh) - 1; i >= 0; i-- {
		if err := s.hooks.Dispatch(ctx, fresh[i]); err != nil {
			s.log.Error("webhooks: event not dispatched; it goes out after the next write", "event_id", fresh[i].Seq, "err", err)
			return
		}
		s.hookSeq = fresh[i].Seq
	}
}

func (s *Server) handleListWebhooks(c echo.Context) error {
	if err := requireUserLogin(c, "manage webhooks"); err != nil {
		return err
	}
	ws, err := s.store.ListWebhooks(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]ota.Webhook, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.Webhook) // never the secret
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) handleCreateWebhook(c echo.Context) error {
	if err := requireUserLogin(c, "manage webhooks"); err != nil {
		return err
	}
	var req ota.WebhookRequest
	if err := s.decodeJSON(c, &req, 0, false); err != nil {
		return err
	}
	if err := webhook.CheckURL(req.URL); err != nil {
		return badRequest("%v", err)
	}
	if err := s.hooks.CheckTarget(c.Request().Context(), req.URL); err != nil {
		return badRequest("%v", err)
	}
	if req.AppID != "" {
		if err := checkApp(req.AppID); err != nil {
			return err
		}
	}
	if err := webhook.CheckEvents(req.Events); err != nil {
		return badRequest("%v", err)
	}
	if err := checkWebhookSecret(req.Secret); err != nil {
		return err
	}
	secret := req.Secret
	if secret == "" {
		var err error
		if secret, err = webhook.NewSecret(); err != nil {
			return err
		}
	}
	id, err := webhook.NewID()
	if err != nil {
		return err
	}
	w := store.StoredWebhook{Secret: secret, Webhook: ota.Webhook{ID: id, URL: req.URL, AppID: req.AppID,
		Events: req.Events, CreatedBy: actor(c), CreatedAt: s.cfg.Now()}}
	if err := s.store.CreateWebhook(c.Request().Context(), w); err != nil {
		return err
	}
	// The URL may carry a token of the receiver's, so only its host is logged.
	s.reqLog(c).Info("webhook added", "webhook", id, "host", webhookHost(req.URL), "user", actor(c))
	created, err := s.store.GetWebhook(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, ota.WebhookCreated{Webhook: created.Webhook, Secret: secret})
}

func checkWebhookSecret(s string) error {
	if s == "" {
		return nil
	}
	if len(s) < minWebhookSecret || len(s) > maxWebhookSecret {
		return badRequest("webhook secret must be %d to %d characters; leave it out to have one generated", minWebhookSecret, maxWebhookSecret)
	}
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return badRequest("webhook secret must be printable ASCII")
		}
	}
	return nil
}

func webhookHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// webhookParam loads the webhook named by :id. Webhooks are server-wide
// settings whose URLs may embed the receiver's credentials, so CI tokens
// may neither read nor change them.
func (s *Server) webhookParam(c echo.Context) (store.StoredWebhook, error) {
	if err := requireUserLogin(c, "manage webhooks"); err != nil {
		return store.StoredWebhook{}, err
	}
	id := c.Param("id")
	w, err := s.store.GetWebhook(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return w, newError(http.StatusNotFound, ota.ErrCodeNotFound, "webhook %s does not exist; list them with otactl webhook list", clip(id))
	}
	return w, err
}

func (s *Server) handleDeleteWebhook(c echo.Context) error {
	w, err := s.webhookParam(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteWebhook(c.Request().Context(), w.ID); err != nil {
		return err
	}
	s.reqLog(c).Info("webhook removed", "webhook", w.ID, "user", actor(c))
	return c.NoContent(http.StatusNoContent)
}

// handleTestWebhook sends a test event to the webhook now, once, and
// answers with the attempt (logged like any other). A failed attempt says
// which step failed, not the network's words for it (see webhook's
// attemptError), so the answer is no port scanner.
func (s *Server) handleTestWebhook(c echo.Context) error {
	w, err := s.webhookParam(c)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	p := ota.WebhookPayload{ID: "test-" + strconv.FormatInt(now.UnixNano(), 36), Type: ota.EventTest, Time: now,
		AppID: w.AppID, Actor: actor(c), Note: "test event from otactl webhook test"}
	d, err := s.hooks.Send(c.Request().Context(), w, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) handleWebhookDeliveries(c echo.Context) error {
	w, err := s.webhookParam(c)
	if err != nil {
		return err
	}
	limit, err := limitParam(c, defaultDeliveryLimit, maxDeliveryLimit)
	if err != nil {
		return err
	}
	ds, err := s.store.Deliveries(c.Request().Context(), w.ID, limit)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []ota.WebhookDelivery{}
	}
	return c.JSON(http.StatusOK, ds)
}
