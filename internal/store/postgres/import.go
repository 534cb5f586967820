package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/storecopy"
	"github.com/otaship/ota/pkg/ota"
)

// Importer copies another store's records into the database as they are
// (a storecopy.Sink): keys, channel ids, history sequence numbers and
// times are kept. Everything happens in one transaction, committed by
// Finish once the counts agree, so an import that fails or is interrupted
// leaves the database as it was.
//
// Importing again what was imported before changes nothing, and an import
// of a source that has moved on since adds what is new: records are
// written over with the source's, history events the database already has
// must be the same, and stats events are added only after the newest the
// database holds for the app. A database with events the source does not
// have, or other events under the same numbers, was written to since: the
// import refuses it rather than mix two histories.
type Importer struct {
	s *Store
	t *txn
	// lastStat is the newest stats receipt time the database held for an
	// app before the import.
	lastStat map[string]time.Time
	// Stats events put, and of them the ones already there.
	statsPut, statsSkipped int
	done                   bool
}

var _ storecopy.Sink = (*Importer)(nil)

// importLock is the advisory lock key of imports, so two run one after the
// other.
const importLock int64 = 0x6f746164_00000002

// Import starts an import. Until Finish or Rollback, writes that record
// history events wait for it (it holds the history counter's lock), so
// nothing interleaves with the copied history.
func (s *Store) Import(ctx context.Context) (*Importer, error) {
	if s.snap != nil {
		return nil, fmt.Errorf("a backup view of the database cannot be imported into")
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("import into %s: %w", s.url, dbErr(ctx, err))
	}
	im := &Importer{s: s, t: &txn{Tx: tx}, lastStat: map[string]time.Time{}}
	for _, sql := range []string{
		fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", importLock),
		"SELECT seq FROM history_counter FOR UPDATE",
		`CREATE TEMP TABLE import_bundles (LIKE bundles) ON COMMIT DROP`,
		`CREATE TEMP TABLE import_events (LIKE events) ON COMMIT DROP`,
	} {
		if _, err := tx.Exec(ctx, sql); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("import into %s: %w", s.url, dbErr(ctx, err))
		}
	}
	return im, nil
}

// Rollback abandons the import. It is harmless after Finish.
func (im *Importer) Rollback(ctx context.Context) error {
	if im.done {
		return nil
	}
	im.done = true
	return im.t.Rollback(context.WithoutCancel(ctx))
}

// PutUsers writes users over those of the same names.
func (im *Importer) PutUsers(ctx context.Context, users []store.User) error {
	b := &pgx.Batch{}
	for _, u := range users {
		if err := checkName("user name", u.Name); err != nil {
			return err
		}
		raw, err := encode("user "+u.Name, u)
		if err != nil {
			return err
		}
		b.Queue("INSERT INTO users (name, record) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET record = excluded.record", u.Name, raw)
	}
	return im.batch(ctx, b)
}

// PutApp writes an app with its channels, bundles and overrides over what
// the database holds of it; the app's overrides become the source's.
func (im *Importer) PutApp(ctx context.Context, r storecopy.AppRecords) error {
	id := r.App.ID
	if err := checkName("app id", id); err != nil {
		return err
	}
	app := r.App
	raw, err := encode("app "+id, app)
	if err != nil {
		return err
	}
	var maxID int64
	for _, c := range r.Channels {
		maxID = max(maxID, c.ID)
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO apps (id, record, next_channel_id) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET record = excluded.record, next_channel_id = greatest(apps.next_channel_id, excluded.next_channel_id)`,
		id, raw, maxID)
	for _, c := range r.Channels {
		if err := checkName("channel", c.Name); err != nil {
			return err
		}
		craw, err := encodeChannel(c)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO channels (app_id, name, kind, record) VALUES ($1, $2, $3, $4)
			ON CONFLICT (app_id, name) DO UPDATE SET kind = excluded.kind, record = excluded.record`, id, c.Name, c.Kind, craw)
	}
	b.Queue("DELETE FROM overrides WHERE app_id = $1", id)
	for _, o := range r.Overrides {
		if err := checkName("device id", o.DeviceID); err != nil {
			return err
		}
		b.Queue("INSERT INTO overrides (app_id, device_id, channel, by_device) VALUES ($1, $2, $3, $4)", id, strings.ToLower(o.DeviceID), o.Channel, o.ByDevice)
	}
	// The app's delta releases become the source's; files it published
	// stay remembered.
	b.Queue("DELETE FROM manifests WHERE app_id = $1", id)
	b.Queue("DELETE FROM delta_files WHERE app_id = $1", id)
	for _, m := range r.Manifests {
		if err := checkName("version", m.Version); err != nil {
			return err
		}
		mraw, err := encode(fmt.Sprintf("manifest of %q", m.Version), m.Files)
		if err != nil {
			return err
		}
		b.Queue("INSERT INTO manifests (app_id, version, files) VALUES ($1, $2, $3)", id, m.Version, mraw)
		sums := make([]string, len(m.Files))
		for i, f := range m.Files {
			sums[i] = strings.ToLower(f.SHA256)
		}
		b.Queue(`INSERT INTO manifest_seen (app_id, sha256, version) SELECT $1, unnest($2::text[]), $3
			ON CONFLICT (app_id, sha256) DO NOTHING`, id, sums, m.Version)
	}
	for _, d := range r.DeltaFiles {
		if err := checkName("sha256", d.SHA256); err != nil {
			return err
		}
		b.Queue(`INSERT INTO delta_files (app_id, sha256, size, br, br_size, encrypted, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			id, strings.ToLower(d.SHA256), d.Size, d.Br, d.BrSize, d.Encrypted, norm(d.CreatedAt))
	}
	if err := im.batch(ctx, b); err != nil {
		return err
	}
	// Bundles may be many: one COPY into a scratch table, one merge.
	rows := make([][]any, 0, len(r.Bundles))
	for _, bn := range r.Bundles {
		if err := checkKind(bn.Kind); err != nil {
			return err
		}
		if err := checkName("version", bn.Version); err != nil {
			return err
		}
		braw, err := encodeBundle(bn)
		if err != nil {
			return err
		}
		rows = append(rows, []any{id, bn.Kind, bn.Version, bn.SHA256, bn.Deleted, bn.UploadedAt, braw})
	}
	if len(rows) == 0 {
		return nil
	}
	if _, err := im.t.Exec(ctx, "TRUNCATE import_bundles"); err != nil {
		return err
	}
	cols := []string{"app_id", "kind", "version", "sha256", "deleted", "uploaded_at", "record"}
	if _, err := im.t.CopyFrom(ctx, pgx.Identifier{"import_bundles"}, cols, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copy bundles of %s: %w", id, err)
	}
	_, err = im.t.Exec(ctx, `INSERT INTO bundles SELECT * FROM import_bundles
		ON CONFLICT (app_id, kind, version) DO UPDATE SET sha256 = excluded.sha256, deleted = excluded.deleted,
			uploaded_at = excluded.uploaded_at, record = excluded.record`)
	return err
}

// PutEvents adds history events under their numbers. An event the
// database already has must be the same one.
func (im *Importer) PutEvents(ctx context.Context, events []ota.Event) error {
	rows := make([][]any, 0, len(events))
	for _, ev := range events {
		if ev.Seq == 0 || ev.Seq > 1<<63-1 {
			return fmt.Errorf("event with sequence number %d: %w", ev.Seq, store.ErrInvalid)
		}
		raw, err := encode(fmt.Sprintf("event %d", ev.Seq), ev)
		if err != nil {
			return err
		}
		rows = append(rows, []any{int64(ev.Seq), ev.AppID, ev.Channel, raw})
	}
	if _, err := im.t.Exec(ctx, "TRUNCATE import_events"); err != nil {
		return err
	}
	if _, err := im.t.CopyFrom(ctx, pgx.Identifier{"import_events"}, []string{"seq", "app_id", "channel", "record"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copy events: %w", err)
	}
	var differ int64
	if err := im.t.QueryRow(ctx, `SELECT coalesce(min(e.seq), 0) FROM events e JOIN import_events i USING (seq)
		WHERE e.record <> i.record OR e.app_id <> i.app_id OR e.channel <> i.channel`).Scan(&differ); err != nil {
		return err
	}
	if differ != 0 {
		return fmt.Errorf("history event %d in the database is not the one being copied: the database holds another history; copy into an empty database: %w",
			differ, store.ErrConflict)
	}
	_, err := im.t.Exec(ctx, "INSERT INTO events SELECT * FROM import_events ON CONFLICT (seq) DO NOTHING")
	return err
}

// PutHealth writes version health records over those of the same app and
// version.
func (im *Importer) PutHealth(ctx context.Context, hs []store.VersionHealth) error {
	for _, h := range hs {
		if err := saveVersionHealth(ctx, im.t, h); err != nil {
			return fmt.Errorf("health of %s %s: %w", h.AppID, h.Version, err)
		}
	}
	return nil
}

// PutTokens writes CI tokens over those of the same ids.
func (im *Importer) PutTokens(ctx context.Context, tokens []store.CIToken) error {
	b := &pgx.Batch{}
	for _, t := range tokens {
		if err := checkName("token id", t.ID); err != nil {
			return err
		}
		raw, err := encode("token "+t.ID, t)
		if err != nil {
			return err
		}
		b.Queue("INSERT INTO ci_tokens (id, record) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET record = excluded.record", t.ID, raw)
	}
	return im.batch(ctx, b)
}

// PutWebhook writes a webhook over the one of the same id, and makes its
// delivery log the source's.
func (im *Importer) PutWebhook(ctx context.Context, w store.StoredWebhook, log []ota.WebhookDelivery) error {
	if err := checkName("webhook id", w.ID); err != nil {
		return err
	}
	raw, err := encode("webhook "+w.ID, w)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue("INSERT INTO webhooks (id, record) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET record = excluded.record", w.ID, raw)
	b.Queue("DELETE FROM webhook_deliveries WHERE webhook_id = $1", w.ID)
	for _, d := range log {
		d.WebhookID = w.ID
		draw, err := encode("delivery", d)
		if err != nil {
			return err
		}
		b.Queue("INSERT INTO webhook_deliveries (webhook_id, record) VALUES ($1, $2)", w.ID, draw)
	}
	return im.batch(ctx, b)
}

// PutStats adds an app's stats events received after the newest one the
// database held before the import (compared to the microsecond, the
// database's precision), so copying the same stats twice adds them once.
func (im *Importer) PutStats(ctx context.Context, appID string, stats []store.StoredStat) error {
	last, ok := im.lastStat[appID]
	if !ok {
		var at *time.Time
		if err := im.t.QueryRow(ctx, "SELECT max(received) FROM stats WHERE app_id = $1", appID).Scan(&at); err != nil {
			return err
		}
		if at != nil {
			last = *at
		}
		im.lastStat[appID] = last
	}
	rows := make([][]any, 0, len(stats))
	for i := range stats {
		st := &stats[i]
		im.statsPut++
		if !last.IsZero() && !st.Received.Truncate(time.Microsecond).After(last) {
			im.statsSkipped++
			continue
		}
		raw, err := encodeStat(st)
		if err != nil {
			return err
		}
		rows = append(rows, []any{appID, st.Received.UTC(), raw, st.Unverified})
	}
	if len(rows) == 0 {
		return nil
	}
	if _, err := im.t.CopyFrom(ctx, pgx.Identifier{"stats"}, []string{"app_id", "received", "event", "unverified"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copy stats of %s: %w", appID, err)
	}
	return nil
}

// PutOffers writes device offer records over those of the same keys.
func (im *Importer) PutOffers(ctx context.Context, offers []store.DeviceOffer) error {
	for i := range offers {
		o := &offers[i]
		if o.Version == "" && o.Running == "" {
			continue
		}
		var seen *time.Time
		if !o.Seen.IsZero() {
			t := o.Seen.UTC()
			seen = &t
		}
		if _, err := im.t.Exec(ctx, `INSERT INTO offers (device, app_id, channel, version, previous, previous_channel, first_at, last_at, count,
				seen_at, flags, running, running_channel, build, plugin)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
			ON CONFLICT (device) DO UPDATE SET app_id = excluded.app_id, channel = excluded.channel, version = excluded.version,
				previous = excluded.previous, previous_channel = excluded.previous_channel,
				first_at = excluded.first_at, last_at = excluded.last_at, count = excluded.count,
				seen_at = excluded.seen_at, flags = excluded.flags, running = excluded.running,
				running_channel = excluded.running_channel, build = excluded.build, plugin = excluded.plugin`,
			int64(o.Device), o.AppID, o.Channel, o.Version, o.Previous, o.PreviousChannel, o.First.UTC(), o.Last.UTC(), int64(o.Count),
			seen, int64(o.Flags), o.Running, o.RunningChannel, o.Build, o.Plugin); err != nil {
			return fmt.Errorf("offer %x: %w", o.Device, err)
		}
	}
	return nil
}

// PutAdoption writes adoption days over those of the same app and day.
func (im *Importer) PutAdoption(ctx context.Context, days []store.AdoptionDay) error {
	for _, d := range days {
		raw, err := json.Marshal(d.Counts)
		if err != nil {
			return err
		}
		if _, err := im.t.Exec(ctx, `INSERT INTO adoption (app_id, day, counts) VALUES ($1, $2, $3)
			ON CONFLICT (app_id, day) DO UPDATE SET counts = excluded.counts`,
			d.AppID, d.Day.UTC().Format(time.DateOnly), raw); err != nil {
			return fmt.Errorf("adoption of %s on %s: %w", d.AppID, d.Day.Format(time.DateOnly), err)
		}
	}
	return nil
}

// StatsSkipped is how many of the stats events put were in the database
// already.
func (im *Importer) StatsSkipped() int { return im.statsSkipped }

// Finish checks that the database now holds what want counts (stats: that
// every event put was copied or already there), moves the history counter
// past the newest event, and commits.
func (im *Importer) Finish(ctx context.Context, want storecopy.Counts) error {
	if im.done {
		return fmt.Errorf("import already finished")
	}
	have, err := counts(ctx, im.t)
	if err != nil {
		return err
	}
	have.Stats = im.statsPut
	if diff := have.Diff(want); len(diff) > 0 {
		_ = im.Rollback(ctx)
		return fmt.Errorf("after the copy the database does not hold what the source does (%s): it has records the source lacks, so it was written to besides this copy; nothing was changed: %w",
			strings.Join(diff, "; "), store.ErrConflict)
	}
	b := &pgx.Batch{}
	b.Queue("UPDATE history_counter SET seq = greatest(seq, $1)", int64(want.LastSeq))
	b.Queue(`INSERT INTO stats_counts (app_id, n, bytes) SELECT app_id, count(*), sum(octet_length(event::text)) FROM stats GROUP BY app_id
		ON CONFLICT (app_id) DO UPDATE SET n = excluded.n, bytes = excluded.bytes`)
	if err := im.batch(ctx, b); err != nil {
		return err
	}
	im.done = true
	if err := im.t.Commit(ctx); err != nil {
		return fmt.Errorf("commit the import: %w", dbErr(ctx, err))
	}
	return nil
}

func (im *Importer) batch(ctx context.Context, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	return dbErr(ctx, im.t.SendBatch(ctx, b).Close())
}

// Counts counts the database's records.
func (s *Store) Counts(ctx context.Context) (storecopy.Counts, error) {
	c, err := counts(ctx, s.db())
	if err != nil {
		return c, fmt.Errorf("count records of %s: %w", s.url, dbErr(ctx, err))
	}
	return c, nil
}

func counts(ctx context.Context, db querier) (storecopy.Counts, error) {
	var (
		c    storecopy.Counts
		last int64
	)
	err := db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM users), (SELECT count(*) FROM apps), (SELECT count(*) FROM channels),
		(SELECT count(*) FROM bundles), (SELECT count(*) FROM overrides), (SELECT count(*) FROM events),
		(SELECT coalesce(max(seq), 0) FROM events), (SELECT count(*) FROM health_versions),
		(SELECT count(*) FROM ci_tokens), (SELECT count(*) FROM webhooks), (SELECT count(*) FROM webhook_deliveries),
		(SELECT count(*) FROM stats), (SELECT count(*) FROM manifests),
		(SELECT count(*) FROM delta_files d WHERE EXISTS (SELECT 1 FROM apps WHERE id = d.app_id)),
		(SELECT count(*) FROM offers), (SELECT count(*) FROM adoption)`).Scan(
		&c.Users, &c.Apps, &c.Channels, &c.Bundles, &c.Overrides, &c.Events, &last, &c.Health,
		&c.Tokens, &c.Webhooks, &c.Deliveries, &c.Stats, &c.Manifests, &c.DeltaFiles, &c.Offers, &c.Adoption)
	c.LastSeq = uint64(last)
	return c, err
}
