package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/postgres"
	"github.com/otaship/ota/internal/store/storetest"
	"github.com/otaship/ota/internal/testengine"
	"github.com/otaship/ota/pkg/ota"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// openURL opens a store on the database at url, closed when the test ends.
func openURL(t testing.TB, url string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// open opens a store on a fresh database.
func open(t testing.TB, opts postgres.Options) *postgres.Store {
	t.Helper()
	return openURL(t, testengine.Postgres(t), opts)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, postgres.Options{}) })
}

func TestConformanceStatsLimits(t *testing.T) {
	storetest.RunStatsLimits(t, func(t *testing.T, lim store.StatsLimits) store.Store {
		return open(t, postgres.Options{StatsMaxPerApp: lim.MaxEventsPerApp, StatsMaxBytesPerApp: lim.MaxBytesPerApp})
	})
}

func publish(t testing.TB, s store.Store, app, channel, version string) (ota.UploadResult, error) {
	return s.Publish(t.Context(), store.PublishInput{
		Bundle:  ota.Bundle{AppID: app, Version: version, Kind: ota.KindWeb, SHA256: storetest.Sum(app + version), Size: 42},
		Channel: channel, Actor: "alice", Time: epoch,
	})
}

func mustPublish(t testing.TB, s store.Store, app, channel, version string) {
	t.Helper()
	if _, err := publish(t, s, app, channel, version); err != nil {
		t.Fatalf("publish %s %s %s: %v", app, channel, version, err)
	}
}

// TestOpenTogether: replicas starting at once on a fresh database migrate
// it once, and each of them opens.
func TestOpenTogether(t *testing.T) {
	url := testengine.Postgres(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*postgres.Store, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = postgres.Open(t.Context(), url, postgres.Options{})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var rows, maxVersion int
	if err := conn.QueryRow(t.Context(), "SELECT count(*), max(version) FROM otad_schema").Scan(&rows, &maxVersion); err != nil {
		t.Fatal(err)
	}
	want, err := stores[0].SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rows != want || maxVersion != want || want < 1 {
		t.Errorf("otad_schema has %d rows up to version %d; want each of the %d migrations once", rows, maxVersion, want)
	}
	// Every replica works on the one schema.
	for i, s := range stores {
		mustPublish(t, s, "app", "stable", fmt.Sprintf("1.0.%d", i))
	}
}

func TestSchemaTooNew(t *testing.T) {
	url := testengine.Postgres(t)
	s := openURL(t, url, postgres.Options{})
	v, err := s.SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), "INSERT INTO otad_schema (version, name) VALUES ($1, 'from the future')", v+1); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(t.Context(), url, postgres.Options{})
	if !errors.Is(err, postgres.ErrSchemaTooNew) {
		t.Errorf("open of a newer schema: %v; want ErrSchemaTooNew", err)
	}
}

// TestOpenErrors: a database that cannot be reached, or a URL that is not
// one, fails Open with a message that names the place but never the
// password.
func TestOpenErrors(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	admin := testengine.PostgresAdminURL(t)
	tests := []struct {
		name string
		url  string
		want error
		says string
	}{
		{"nothing listens", "postgres://otad:" + secret + "@127.0.0.1:1/otad?sslmode=disable", postgres.ErrUnreachable, "127.0.0.1:1"},
		{"wrong password", strings.Replace(admin, "postgres@", "nobody:"+secret+"@", 1), postgres.ErrUnreachable, "nobody"},
		{"not a URL", "mysql://otad:" + secret + "@db/otad", nil, "postgres://"},
		{"bad option", "postgres://otad:" + secret + "@127.0.0.1:5432/otad?sslmode=maybe", nil, "sslmode"},
		{"password in the query", "postgres://127.0.0.1:1/otad?sslmode=disable&password=" + secret, postgres.ErrUnreachable, "127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := postgres.Open(t.Context(), tt.url, postgres.Options{ConnectTimeout: 3 * time.Second})
			if err == nil {
				t.Fatal("open succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v; want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the password: %v", err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
		})
	}
	if got := postgres.Redact("postgres://u:" + secret + "@h/db?password=" + secret); strings.Contains(got, secret) {
		t.Errorf("Redact = %s", got)
	}
}

// TestTwoReplicasOneChannel: two stores on one database (two replicas)
// publish and roll back one channel at once. Every acknowledged write is
// in the history exactly once, sequence numbers have no gaps, and the
// channel ends as the history says.
func TestTwoReplicasOneChannel(t *testing.T) {
	url := testengine.Postgres(t)
	replicas := []*postgres.Store{openURL(t, url, postgres.Options{}), openURL(t, url, postgres.Options{})}
	mustPublish(t, replicas[0], "app", "stable", "0.0.0")
	const perReplica = 50
	type ack struct {
		typ, version string
	}
	var (
		mu    sync.Mutex
		acked []ack
		wg    sync.WaitGroup
	)
	for r, s := range replicas {
		for w := range 2 { // two writers per replica, as concurrent requests
			wg.Go(func() {
				for i := range perReplica / 2 {
					if i%3 == 2 {
						ch, err := s.Rollback(t.Context(), "app", "stable", "", "alice", epoch)
						if errors.Is(err, store.ErrNoPrevious) {
							continue
						}
						if err != nil {
							t.Errorf("replica %d rollback: %v", r, err)
							return
						}
						if ch.From != ch.To {
							mu.Lock()
							acked = append(acked, ack{ota.EventRollback, ch.To})
							mu.Unlock()
						}
						continue
					}
					v := fmt.Sprintf("%d.%d.%d", r+1, w, i)
					if _, err := publish(t, s, "app", "stable", v); err != nil {
						t.Errorf("replica %d publish %s: %v", r, v, err)
						return
					}
					mu.Lock()
					acked = append(acked, ack{ota.EventUpload, v})
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var evs []ota.Event
	var before uint64
	for {
		page, next, err := replicas[1].History(t.Context(), store.HistoryQuery{AppID: "app", Channel: "stable", Before: before, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, page...)
		if next == 0 {
			break
		}
		before = next
	}
	slices.Reverse(evs) // oldest first
	if len(evs) != len(acked)+1 {
		t.Fatalf("history holds %d events; want the first upload and the %d acknowledged writes", len(evs), len(acked))
	}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d; want %d (no gaps, no duplicates)", i, ev.Seq, i+1)
		}
	}
	var got []ack
	var uploads []string
	for _, ev := range evs[1:] {
		got = append(got, ack{ev.Type, ev.To})
		if ev.Type == ota.EventUpload {
			uploads = append(uploads, ev.Version)
		}
	}
	key := func(a ack) string { return a.typ + " " + a.version }
	sortAcks := func(as []ack) []string {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = key(a)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(sortAcks(got), sortAcks(acked)) {
		t.Errorf("history events differ from the acknowledged writes:\n got %v\nwant %v", sortAcks(got), sortAcks(acked))
	}
	// Each event starts where the one before it ended: no write read a
	// state another had already changed.
	for i := 1; i < len(evs); i++ {
		if evs[i].From != evs[i-1].To {
			t.Errorf("event %d goes from %s, but the channel was at %s", evs[i].Seq, evs[i].From, evs[i-1].To)
		}
	}
	ch, err := replicas[0].GetChannel(t.Context(), "app", "stable")
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; ch.Active != last.To {
		t.Errorf("channel serves %s; the last event says %s", ch.Active, last.To)
	}
	if want := append([]string{"0.0.0"}, uploads...); !slices.Equal(versions(ch.Releases), want) {
		t.Errorf("releases %v; want the uploads in history order %v", versions(ch.Releases), want)
	}
}

func versions(rs []ota.Release) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Version
	}
	return out
}

// TestHistoryInCommitOrder: a reader that sees an event sees every event
// numbered before it, however the writers' transactions interleave, so
// "events after N" never skips one that commits late.
func TestHistoryInCommitOrder(t *testing.T) {
	url := testengine.Postgres(t)
	writers := []*postgres.Store{openURL(t, url, postgres.Options{}), openURL(t, url, postgres.Options{})}
	reader := openURL(t, url, postgres.Options{})
	for i := range 4 {
		mustPublish(t, writers[0], fmt.Sprintf("app%d", i), "stable", "0.0.0")
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range 8 {
		s := writers[w%2]
		app := fmt.Sprintf("app%d", w%4) // several apps: writers do not wait on one app lock
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && i < 40; i++ {
				if _, err := publish(t, s, app, "stable", fmt.Sprintf("%d.%d.0", w, i)); err != nil && ctx.Err() == nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	reads := 0
	for finished := false; !finished; reads++ {
		select {
		case <-done:
			finished = true
		default:
		}
		page, _, err := reader.History(t.Context(), store.HistoryQuery{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(page); i++ {
			if page[i].Seq != page[i-1].Seq-1 {
				cancel()
				t.Fatalf("read %d sees event %d but not %d", reads, page[i-1].Seq, page[i-1].Seq-1)
			}
		}
	}
	cancel()
	t.Logf("%d reads of the history while 8 writers published", reads)
}

// TestStatsCap: each app keeps its newest StatsMaxPerApp events.
func TestStatsCap(t *testing.T) {
	s := open(t, postgres.Options{StatsMaxPerApp: 10})
	mustPublish(t, s, "app", "stable", "1.0.0")
	mustPublish(t, s, "other", "stable", "1.0.0")
	for batch := range 5 {
		var evs []store.StoredStat
		for i := range 5 {
			n := batch*5 + i
			evs = append(evs,
				store.StoredStat{Received: epoch.Add(time.Duration(n) * time.Second), Event: ota.StatsEvent{
					DeviceInfo: ota.DeviceInfo{AppID: "app", DeviceID: fmt.Sprint(n)}, Action: "set"}},
				store.StoredStat{Received: epoch, Event: ota.StatsEvent{DeviceInfo: ota.DeviceInfo{AppID: "other", DeviceID: "x"}}})
		}
		if err := s.AppendStats(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Stats(t.Context(), "app", time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	var devs []string
	for _, st := range got {
		devs = append(devs, st.Event.DeviceID)
	}
	if want := []string{"15", "16", "17", "18", "19", "20", "21", "22", "23", "24"}; !slices.Equal(devs, want) {
		t.Errorf("kept %v; want the newest ten %v", devs, want)
	}
	if other, err := s.Stats(t.Context(), "other", time.Time{}, 100); err != nil || len(other) != 10 {
		t.Errorf("other app kept %d, %v; want 10", len(other), err)
	}
	c, err := s.Counts(t.Context())
	if err != nil || c.Stats != 20 {
		t.Errorf("counts %+v, %v; want 20 stats rows", c, err)
	}
}

// TestStatsOddBytes: what a device sends that PostgreSQL cannot keep as
// sent (invalid UTF-8, NUL) is stored re-encoded, not a failed batch.
func TestStatsOddBytes(t *testing.T) {
	s := open(t, postgres.Options{})
	mustPublish(t, s, "app", "stable", "1.0.0")
	evs := []store.StoredStat{
		{Received: epoch, Event: ota.StatsEvent{DeviceInfo: ota.DeviceInfo{AppID: "app", DeviceID: "a\x00b"}, Action: "set"},
			Raw: []byte(`{"app_id":"app","device_id":"a\u0000b","action":"set"}`)},
		{Received: epoch.Add(time.Second), Event: ota.StatsEvent{DeviceInfo: ota.DeviceInfo{AppID: "app", DeviceID: "\uFFFD"}, Action: "set"},
			Raw: []byte("{\"app_id\":\"app\",\"device_id\":\"\xff\",\"action\":\"set\"}")},
	}
	if err := s.AppendStats(t.Context(), evs); err != nil {
		t.Fatalf("append: %v", err)
	}
	got, err := s.Stats(t.Context(), "app", time.Time{}, 0)
	if err != nil || len(got) != 2 || got[0].Event.DeviceID != "a\x00b" || got[1].Event.DeviceID != "\uFFFD" {
		t.Errorf("stats = %+v, %v", got, err)
	}
	// Health of such a device is kept without it.
	err = s.SaveHealth(t.Context(), []store.VersionHealth{{AppID: "app", Version: "1.0.0", Installed: []string{"ok", "a\x00b"},
		Failed: map[string][]string{"bad\x00": {"x"}, "fine": {"update_fail"}}, UpdatedAt: epoch}})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := s.LoadHealth(t.Context())
	if err != nil || len(hs) != 1 || !slices.Equal(hs[0].Installed, []string{"ok"}) || len(hs[0].Failed) != 1 {
		t.Errorf("health = %+v, %v", hs, err)
	}
}

// TestNULInText: jsonb cannot hold NUL; a record with one is refused as
// invalid, and nothing of it is stored.
func TestNULInText(t *testing.T) {
	s := open(t, postgres.Options{})
	_, err := s.Publish(t.Context(), store.PublishInput{
		Bundle:  ota.Bundle{AppID: "app", Version: "1.0.0", Kind: ota.KindWeb, SHA256: storetest.Sum("x"), Notes: "a\x00b"},
		Channel: "stable", Actor: "alice", Time: epoch,
	})
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("publish with NUL in the notes: %v; want ErrInvalid", err)
	}
	if apps, err := s.ListApps(t.Context()); err != nil || len(apps) != 0 {
		t.Errorf("apps after the refused publish: %v, %v", apps, err)
	}
}

// TestPolicyDefaults: a channel stored before a policy field existed
// reads it as its default, not as its zero value.
func TestPolicyDefaults(t *testing.T) {
	url := testengine.Postgres(t)
	s := openURL(t, url, postgres.Options{})
	mustPublish(t, s, "app", "stable", "1.0.0")
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), `UPDATE channels SET record = record #- '{policy,min_devices}' #- '{policy,auto_halt}'`); err != nil {
		t.Fatal(err)
	}
	ch, err := s.GetChannel(t.Context(), "app", "stable")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Policy.MinDevices != ota.DefaultMinDevices || !ch.Policy.AutoHalt {
		t.Errorf("policy of a channel stored without the auto-halt fields = %+v; want their defaults", ch.Policy)
	}
}
