// Package storecopy copies every record of one store.Store into another,
// keys, history sequence numbers and times included. otad migrate uses it
// to move a data dir's store to PostgreSQL, and the PostgreSQL store's
// Backup to write the embedded store's file format, which otad backup and
// restore know.
//
// The source is read through the store.Store interface only, so any
// implementation can be copied from; the destination is a Sink, which an
// implementation offers to be filled with records as they are (the
// interface's own writes would number new events and stamp new times).
package storecopy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Counts is how many records of each kind a store holds.
type Counts struct {
	Users      int `json:"users"`
	Apps       int `json:"apps"`
	Channels   int `json:"channels"`
	Bundles    int `json:"bundles"`
	Overrides  int `json:"overrides"`
	Events     int `json:"events"`
	Health     int `json:"health"` // version health records
	Tokens     int `json:"tokens"`
	Webhooks   int `json:"webhooks"`
	Deliveries int `json:"deliveries"`
	Stats      int `json:"stats"`
	// Manifests of delta releases, and the delta file records they name.
	Manifests  int `json:"manifests"`
	DeltaFiles int `json:"delta_files"`
	Offers     int `json:"offers"`   // what otad last offered each device
	Adoption   int `json:"adoption"` // adoption days (one per app and day)
	// LastSeq is the sequence number of the newest event (0: none).
	LastSeq uint64 `json:"last_seq"`
}

// Diff lists, as "kind: have N, want M", every count of c that differs
// from want; empty when they agree.
func (c Counts) Diff(want Counts) []string {
	var out []string
	add := func(kind string, have, want int) {
		if have != want {
			out = append(out, fmt.Sprintf("%s: %d, want %d", kind, have, want))
		}
	}
	add("users", c.Users, want.Users)
	add("apps", c.Apps, want.Apps)
	add("channels", c.Channels, want.Channels)
	add("bundles", c.Bundles, want.Bundles)
	add("device overrides", c.Overrides, want.Overrides)
	add("history events", c.Events, want.Events)
	add("version health records", c.Health, want.Health)
	add("CI tokens", c.Tokens, want.Tokens)
	add("webhooks", c.Webhooks, want.Webhooks)
	add("webhook deliveries", c.Deliveries, want.Deliveries)
	add("stats events", c.Stats, want.Stats)
	add("delta manifests", c.Manifests, want.Manifests)
	add("delta files", c.DeltaFiles, want.DeltaFiles)
	add("device offers", c.Offers, want.Offers)
	add("adoption days", c.Adoption, want.Adoption)
	if c.LastSeq != want.LastSeq {
		out = append(out, fmt.Sprintf("newest event: %d, want %d", c.LastSeq, want.LastSeq))
	}
	return out
}

// String is a one-line summary.
func (c Counts) String() string {
	return fmt.Sprintf("%d users, %d apps, %d channels, %d bundles, %d device overrides, %d history events (newest %d), "+
		"%d version health records, %d CI tokens, %d webhooks with %d deliveries, %d stats events, %d delta manifests naming %d delta files, %d device offers, %d adoption days",
		c.Users, c.Apps, c.Channels, c.Bundles, c.Overrides, c.Events, c.LastSeq,
		c.Health, c.Tokens, c.Webhooks, c.Deliveries, c.Stats, c.Manifests, c.DeltaFiles, c.Offers, c.Adoption)
}

// AppRecords is one app with what belongs to it.
type AppRecords struct {
	App ota.App
	// Channels as ListChannels returns them; ActiveBundle and Public are
	// derived and ignored.
	Channels []ota.Channel
	// Bundles as ListBundles returns them, deleted ones included.
	Bundles   []ota.Bundle
	Overrides []store.DeviceOverride
	// Manifests are those of the app's delta releases (bundles with
	// Files, not deleted), and DeltaFiles the delta file records they
	// name, by key. A sink makes them the app's.
	Manifests  []store.Manifest
	DeltaFiles []store.DeltaFile
}

// Sink is a store being filled with another store's records. Copy calls
// PutUsers and PutApp for every app first, then the rest, and Finish
// last; each Put may come several times.
type Sink interface {
	PutUsers(ctx context.Context, users []store.User) error
	PutApp(ctx context.Context, a AppRecords) error
	// PutEvents gets history events with their sequence numbers, in any
	// order.
	PutEvents(ctx context.Context, events []ota.Event) error
	PutHealth(ctx context.Context, hs []store.VersionHealth) error
	PutTokens(ctx context.Context, tokens []store.CIToken) error
	// PutWebhook gets a webhook with its delivery log, oldest first.
	PutWebhook(ctx context.Context, w store.StoredWebhook, log []ota.WebhookDelivery) error
	// PutStats gets stats events of one app, oldest first.
	PutStats(ctx context.Context, appID string, stats []store.StoredStat) error
	// PutOffers gets device offer records, in batches.
	PutOffers(ctx context.Context, offers []store.DeviceOffer) error
	// PutAdoption gets adoption days.
	PutAdoption(ctx context.Context, days []store.AdoptionDay) error
	// Finish checks that the sink holds what want counts and makes the
	// copy durable; a sink that copies in one transaction commits here.
	Finish(ctx context.Context, want Counts) error
}

// Batch sizes of the reads from the source.
const (
	eventBatch = 5000
	statsPage  = 10000 // store.Store.Stats returns at most this many
	offerBatch = 10000
)

// Copy reads every record of src and puts it into dst, then calls
// dst.Finish with the counts read. progress, when not nil, is told what is
// being copied. src should not change meanwhile (a stopped otad's store,
// or a snapshot).
func Copy(ctx context.Context, src store.Store, dst Sink, progress func(string)) (Counts, error) {
	var c Counts
	say := func(format string, args ...any) {
		if progress != nil {
			progress(fmt.Sprintf(format, args...))
		}
	}
	users, err := src.ListUsers(ctx)
	if err != nil {
		return c, err
	}
	if err := dst.PutUsers(ctx, users); err != nil {
		return c, fmt.Errorf("copy users: %w", err)
	}
	c.Users = len(users)

	apps, err := src.ListApps(ctx)
	if err != nil {
		return c, err
	}
	for i, app := range apps {
		recs, err := readApp(ctx, src, app)
		if err != nil {
			return c, fmt.Errorf("read app %s: %w", app.ID, err)
		}
		if err := dst.PutApp(ctx, recs); err != nil {
			return c, fmt.Errorf("copy app %s: %w", app.ID, err)
		}
		c.Apps++
		c.Channels += len(recs.Channels)
		c.Bundles += len(recs.Bundles)
		c.Overrides += len(recs.Overrides)
		c.Manifests += len(recs.Manifests)
		c.DeltaFiles += len(recs.DeltaFiles)
		say("app %d of %d: %s (%d channels, %d bundles)", i+1, len(apps), app.ID, len(recs.Channels), len(recs.Bundles))
	}

	if err := copyEvents(ctx, src, dst, &c, say); err != nil {
		return c, err
	}

	hs, err := src.LoadHealth(ctx)
	if err != nil {
		return c, err
	}
	if err := dst.PutHealth(ctx, hs); err != nil {
		return c, fmt.Errorf("copy device health: %w", err)
	}
	c.Health = len(hs)

	tokens, err := src.ListTokens(ctx)
	if err != nil {
		return c, err
	}
	if err := dst.PutTokens(ctx, tokens); err != nil {
		return c, fmt.Errorf("copy CI tokens: %w", err)
	}
	c.Tokens = len(tokens)

	hooks, err := src.ListWebhooks(ctx)
	if err != nil {
		return c, err
	}
	for _, w := range hooks {
		log, err := src.Deliveries(ctx, w.ID, 0)
		if err != nil {
			return c, err
		}
		slices.Reverse(log) // newest first → oldest first
		if err := dst.PutWebhook(ctx, w, log); err != nil {
			return c, fmt.Errorf("copy webhook %s: %w", w.ID, err)
		}
		c.Webhooks++
		c.Deliveries += len(log)
	}

	for _, app := range apps {
		n, err := copyStats(ctx, src, dst, app.ID)
		if err != nil {
			return c, fmt.Errorf("copy stats of %s: %w", app.ID, err)
		}
		c.Stats += n
	}
	var offers []store.DeviceOffer
	put := func() error {
		if len(offers) == 0 {
			return nil
		}
		if err := dst.PutOffers(ctx, offers); err != nil {
			return fmt.Errorf("copy device offers: %w", err)
		}
		c.Offers += len(offers)
		offers = offers[:0]
		return nil
	}
	err = src.LoadOffers(ctx, func(o store.DeviceOffer) error {
		offers = append(offers, o)
		if len(offers) < offerBatch {
			return nil
		}
		return put()
	})
	if err != nil {
		return c, err
	}
	if err := put(); err != nil {
		return c, err
	}
	days, err := src.LoadAdoption(ctx, time.Time{})
	if err != nil {
		return c, err
	}
	if len(days) > 0 {
		if err := dst.PutAdoption(ctx, days); err != nil {
			return c, fmt.Errorf("copy adoption: %w", err)
		}
		c.Adoption = len(days)
	}
	say("checking the copy: %s", c)
	if err := dst.Finish(ctx, c); err != nil {
		return c, err
	}
	return c, nil
}

func readApp(ctx context.Context, src store.Store, app ota.App) (AppRecords, error) {
	r := AppRecords{App: app}
	var err error
	if r.Channels, err = src.ListChannels(ctx, app.ID); err != nil {
		return r, err
	}
	for i := range r.Channels {
		r.Channels[i].ActiveBundle = nil
	}
	if r.Bundles, err = src.ListBundles(ctx, app.ID); err != nil {
		return r, err
	}
	st, err := src.LoadAppState(ctx, app.ID)
	if err != nil {
		return r, err
	}
	r.Overrides = st.Overrides
	// Delta releases: each live one's manifest, and the records of the
	// file forms they name (records no release names are left behind, as
	// collection would forget them).
	var keys []string
	for _, b := range r.Bundles {
		if b.Kind != ota.KindWeb || b.Files == 0 || b.Deleted {
			continue
		}
		files, err := src.Manifest(ctx, app.ID, b.Version)
		if err != nil {
			return r, fmt.Errorf("manifest of %s: %w", b.Version, err)
		}
		r.Manifests = append(r.Manifests, store.Manifest{AppID: app.ID, Version: b.Version, Files: files})
		for _, f := range files {
			raw := f.Raw
			if raw == "" {
				raw = f.SHA256
			}
			keys = append(keys, raw)
			if f.Br != "" {
				keys = append(keys, f.Br)
			}
		}
	}
	if len(keys) > 0 {
		slices.Sort(keys)
		keys = slices.Compact(keys)
		recs, err := src.DeltaFiles(ctx, app.ID, keys)
		if err != nil {
			return r, err
		}
		for _, k := range keys {
			if d, ok := recs[k]; ok {
				r.DeltaFiles = append(r.DeltaFiles, d)
			}
		}
	}
	return r, nil
}

// copyEvents pages through the whole history, newest first.
func copyEvents(ctx context.Context, src store.Store, dst Sink, c *Counts, say func(string, ...any)) error {
	var (
		before uint64
		batch  []ota.Event
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := dst.PutEvents(ctx, batch); err != nil {
			return fmt.Errorf("copy history: %w", err)
		}
		c.Events += len(batch)
		say("history: %d events", c.Events)
		batch = batch[:0]
		return nil
	}
	for {
		page, next, err := src.History(ctx, store.HistoryQuery{Before: before, Limit: 500})
		if err != nil {
			return err
		}
		if c.LastSeq == 0 && len(batch) == 0 && c.Events == 0 && len(page) > 0 {
			c.LastSeq = page[0].Seq
		}
		batch = append(batch, page...)
		if len(batch) >= eventBatch {
			if err := flush(); err != nil {
				return err
			}
		}
		if next == 0 {
			return flush()
		}
		before = next
	}
}

// copyStats pages through an app's stats. Stats pages by receipt time, at
// or after since, so each page after the first starts with the events of
// the last time seen, which are skipped.
func copyStats(ctx context.Context, src store.Store, dst Sink, appID string) (int, error) {
	var (
		since time.Time
		skip  int // events at since already copied
		n     int
	)
	for {
		page, err := src.Stats(ctx, appID, since, statsPage)
		if err != nil {
			return n, err
		}
		full := len(page) == statsPage
		if skip > len(page) {
			return n, errors.New("the stats changed while being copied; stop otad and copy again")
		}
		page = page[skip:]
		if len(page) == 0 {
			if full {
				return n, fmt.Errorf("more than %d stats events were received at %s; they cannot be paged", statsPage, since.Format(time.RFC3339Nano))
			}
			return n, nil
		}
		if err := dst.PutStats(ctx, appID, page); err != nil {
			return n, err
		}
		n += len(page)
		if !full {
			return n, nil
		}
		last := page[len(page)-1].Received
		if !last.Equal(since) {
			since, skip = last, 0
		}
		for i := len(page) - 1; i >= 0 && page[i].Received.Equal(since); i-- {
			skip++
		}
	}
}

// Describe names the kinds of records c counts that make a store not
// empty ("" when it is), for a refusal's message.
func Describe(c Counts) string {
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{c.Users, "users"}, {c.Apps, "apps"}, {c.Events, "history events"}, {c.Tokens, "CI tokens"}, {c.Webhooks, "webhooks"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	return strings.Join(parts, ", ")
}
