package storecopy

import (
	"context"
	"slices"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Records is a Sink that keeps what it is given in memory, in a stable
// order: tests compare two stores by what Read returns for each.
type Records struct {
	Users    []store.User
	Apps     []AppRecords
	Events   []ota.Event // oldest first
	Health   []store.VersionHealth
	Tokens   []store.CIToken
	Webhooks []Webhook
	Stats    map[string][]store.StoredStat
	Offers   []store.DeviceOffer // by device key
	Adoption []store.AdoptionDay
	Counts   Counts
}

// Webhook is a webhook with its delivery log, oldest first.
type Webhook struct {
	Webhook store.StoredWebhook
	Log     []ota.WebhookDelivery
}

// Read copies every record of src into memory.
func Read(ctx context.Context, src store.Store) (*Records, error) {
	r := &Records{Stats: map[string][]store.StoredStat{}}
	if _, err := Copy(ctx, src, r, nil); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Records) PutUsers(_ context.Context, users []store.User) error {
	r.Users = append(r.Users, users...)
	return nil
}

func (r *Records) PutApp(_ context.Context, a AppRecords) error {
	r.Apps = append(r.Apps, a)
	return nil
}

func (r *Records) PutEvents(_ context.Context, events []ota.Event) error {
	r.Events = append(r.Events, events...)
	return nil
}

func (r *Records) PutHealth(_ context.Context, hs []store.VersionHealth) error {
	r.Health = append(r.Health, hs...)
	return nil
}

func (r *Records) PutTokens(_ context.Context, tokens []store.CIToken) error {
	r.Tokens = append(r.Tokens, tokens...)
	return nil
}

func (r *Records) PutWebhook(_ context.Context, w store.StoredWebhook, log []ota.WebhookDelivery) error {
	r.Webhooks = append(r.Webhooks, Webhook{Webhook: w, Log: log})
	return nil
}

func (r *Records) PutStats(_ context.Context, appID string, stats []store.StoredStat) error {
	r.Stats[appID] = append(r.Stats[appID], stats...)
	return nil
}

func (r *Records) PutOffers(_ context.Context, offers []store.DeviceOffer) error {
	r.Offers = append(r.Offers, offers...)
	return nil
}

func (r *Records) PutAdoption(_ context.Context, days []store.AdoptionDay) error {
	r.Adoption = append(r.Adoption, days...)
	return nil
}

func (r *Records) Finish(_ context.Context, want Counts) error {
	slices.SortFunc(r.Offers, func(a, b store.DeviceOffer) int {
		switch {
		case a.Device < b.Device:
			return -1
		case a.Device > b.Device:
			return 1
		}
		return 0
	})
	slices.SortFunc(r.Events, func(a, b ota.Event) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	r.Counts = want
	return nil
}
