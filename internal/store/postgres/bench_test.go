package postgres_test

// Benchmarks of the PostgreSQL store, with the embedded store beside it
// where the comparison means something. Run them with the engines up:
//
//	source /tmp/ota-engines/env
//	go test -run '^$' -bench . -benchtime 2s ./internal/store/postgres/
//
// BenchmarkHistoryPage seeds a million events (about a minute) and
// BenchmarkDatabaseSize 100,000 bundles and a million stats events; run
// the latter once, with -benchtime 1x. docs/benchmarks.md has the numbers.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/store/bolt/bolttest"
	"github.com/otaship/ota/internal/store/postgres"
	"github.com/otaship/ota/internal/store/storecopy"
	"github.com/otaship/ota/internal/store/storetest"
	"github.com/otaship/ota/internal/testengine"
	"github.com/otaship/ota/pkg/ota"
)

// both runs fn against a new embedded store and a new PostgreSQL store.
func both(b *testing.B, fn func(b *testing.B, s store.Store)) {
	b.Run("bolt", func(b *testing.B) { fn(b, bolttest.New(b, bolt.Options{})) })
	b.Run("postgres", func(b *testing.B) { fn(b, open(b, postgres.Options{})) })
}

func benchPublish(b *testing.B, s store.Store, app, channel, version string) {
	b.Helper()
	_, err := s.Publish(b.Context(), store.PublishInput{
		Bundle: ota.Bundle{AppID: app, Version: version, Kind: ota.KindWeb, SHA256: storetest.Sum(app + version), Size: 4 << 20,
			UploadedBy: "ci", Notes: "release notes of " + version, MinNative: "1.0.0"},
		Channel: channel, Actor: "ci", Time: epoch,
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPublish: one deploy (bundle record, channel, upload event).
func BenchmarkPublish(b *testing.B) {
	both(b, func(b *testing.B, s store.Store) {
		benchPublish(b, s, "app", "stable", "0.0.0")
		b.ResetTimer()
		for i := range b.N {
			// A few channels, as an app has: the channel record, which
			// lists its releases, grows with b.N either way.
			benchPublish(b, s, "app", fmt.Sprintf("ch%d", i%8), fmt.Sprintf("1.%d.0", i))
		}
	})
}

// BenchmarkRollback: re-pointing a channel with its event.
func BenchmarkRollback(b *testing.B) {
	both(b, func(b *testing.B, s store.Store) {
		for _, v := range []string{"1.0.0", "1.1.0"} {
			benchPublish(b, s, "app", "stable", v)
		}
		b.ResetTimer()
		for i := range b.N {
			to := []string{"1.0.0", "1.1.0"}[i%2]
			if _, err := s.Rollback(b.Context(), "app", "stable", to, "ci", epoch); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPublishParallel: deploys from several writers at once, to one
// app (they take turns on its lock) and to many apps (they do not).
func BenchmarkPublishParallel(b *testing.B) {
	for _, apps := range []int{1, 16} {
		b.Run(fmt.Sprintf("apps=%d", apps), func(b *testing.B) {
			s := open(b, postgres.Options{})
			var n atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					benchPublish(b, s, fmt.Sprintf("app%d", i%int64(apps)), "stable", fmt.Sprintf("1.%d.0", i))
				}
			})
		})
	}
}

// seedHistory writes n events straight into the tables, spread over ten
// apps of three channels each, as the store would have written them.
func seedHistory(b *testing.B, url string, n int) {
	b.Helper()
	conn, err := pgx.Connect(b.Context(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(b.Context())
	for _, sql := range []string{
		`INSERT INTO apps (id, record) SELECT 'app' || a, jsonb_build_object('app_id', 'app' || a, 'created_at', '2026-01-01T00:00:00Z')
			FROM generate_series(0, 9) a`,
		`INSERT INTO channels (app_id, name, kind, record) SELECT 'app' || a, 'ch' || c, 'web',
			jsonb_build_object('name', 'ch' || c, 'id', c + 1, 'kind', 'web', 'releases', '[]'::jsonb, 'updated_at', '2026-01-01T00:00:00Z')
			FROM generate_series(0, 9) a, generate_series(0, 2) c`,
		fmt.Sprintf(`INSERT INTO events (seq, app_id, channel, record)
			SELECT g, 'app' || (g %% 10), 'ch' || ((g / 10) %% 3), jsonb_build_object(
				'seq', g, 'time', '2026-01-01T00:00:00Z', 'actor', 'ci', 'type', 'upload', 'app_id', 'app' || (g %% 10),
				'channel', 'ch' || ((g / 10) %% 3), 'version', '1.' || g || '.0', 'from', '1.' || (g - 1) || '.0', 'to', '1.' || g || '.0',
				'sha256', md5(g::text) || md5(g::text))
			FROM generate_series(1, %d) g`, n),
		// The app "rare" has its only ten events at the start.
		`INSERT INTO apps (id, record) VALUES ('rare', '{"app_id":"rare","created_at":"2026-01-01T00:00:00Z"}')`,
		"UPDATE events SET app_id = 'rare', record = jsonb_set(record, '{app_id}', '\"rare\"') WHERE seq <= 10",
		fmt.Sprintf("UPDATE history_counter SET seq = %d", n),
		"VACUUM ANALYZE events", // hint bits and visibility map set, as autovacuum leaves a table
	} {
		if _, err := conn.Exec(b.Context(), sql); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHistoryPage: a page of 50 events, with each filter, over
// 10,000 and over a million events, at a random depth ("any") and within
// the newest 10,000 events ("recent", where the UI reads). Each
// iteration reads one page from each database, alternately, so the
// shared machine's load falls on both alike; the ratio of their times is
// what matters: paging must stay flat. The app "rare" has ten events,
// all of them the oldest, which a plan that walks the whole history
// filtering by app would find slowly.
func BenchmarkHistoryPage(b *testing.B) {
	sizes := []int{10_000, 1_000_000}
	stores := make([]*postgres.Store, len(sizes))
	for i, n := range sizes {
		url := testengine.Postgres(b)
		stores[i] = openURL(b, url, postgres.Options{})
		seedHistory(b, url, n)
	}
	for _, q := range []struct {
		name string
		q    store.HistoryQuery
	}{
		{"all", store.HistoryQuery{}},
		{"app", store.HistoryQuery{AppID: "app3"}},
		{"channel", store.HistoryQuery{AppID: "app3", Channel: "ch1"}},
		{"rare-app", store.HistoryQuery{AppID: "rare"}},
	} {
		for _, depth := range []string{"any", "recent"} {
			b.Run(q.name+"/"+depth, func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				spent := make([]time.Duration, len(sizes))
				for b.Loop() {
					for i, n := range sizes {
						q := q.q
						q.Limit = 50
						switch depth {
						case "any":
							q.Before = uint64(rng.IntN(n) + 1)
						case "recent":
							q.Before = uint64(n - rng.IntN(10_000) + 1)
						}
						start := time.Now()
						if _, _, err := stores[i].History(b.Context(), q); err != nil {
							b.Fatal(err)
						}
						spent[i] += time.Since(start)
					}
				}
				per := func(i int) float64 { return float64(spent[i].Microseconds()) / float64(b.N) }
				b.ReportMetric(per(0), "µs/page-10k")
				b.ReportMetric(per(1), "µs/page-1M")
				b.ReportMetric(per(1)/per(0), "ratio-1M/10k")
			})
		}
	}
}

// BenchmarkAppendStats: device stats batches as /stats stores them, from
// several requests at once.
func BenchmarkAppendStats(b *testing.B) {
	for _, batch := range []int{10, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			both(b, func(b *testing.B, s store.Store) {
				for a := range 4 {
					benchPublish(b, s, fmt.Sprintf("app%d", a), "stable", "1.0.0")
				}
				var n atomic.Int64
				b.SetParallelism(4)
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					evs := make([]store.StoredStat, batch)
					for pb.Next() {
						i := n.Add(1)
						for j := range evs {
							ev := ota.StatsEvent{Action: "set"}
							ev.AppID, ev.DeviceID, ev.VersionName, ev.Platform = fmt.Sprintf("app%d", i%4), fmt.Sprintf("dev-%d-%d", i, j), "1.0.0", "android"
							raw, _ := json.Marshal(ev)
							evs[j] = store.StoredStat{Received: time.Now(), Event: ev, Raw: raw}
						}
						if err := s.AppendStats(b.Context(), evs); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.ReportMetric(float64(n.Load())*float64(batch)/time.Since(start).Seconds(), "events/s")
			})
		})
	}
}

// BenchmarkDatabaseSize stores 100,000 bundles (100 apps of 1,000, each
// with its release in the channel record and its upload event) and a
// million stats events, in both stores, and reports what they take on
// disk: pg_total_relation_size of the tables (indexes and TOAST
// included), the size of the bbolt file. Records go in through the
// importers (100,000 publishes would take many minutes); they are the
// records Publish writes. Run it with -benchtime 1x.
func BenchmarkDatabaseSize(b *testing.B) {
	const (
		apps, perApp = 100, 1000
		stats        = 1_000_000
		statsBatch   = 1000
	)
	fill := func(b *testing.B, s store.Store, im storecopy.Sink) {
		var want storecopy.Counts
		for a := range apps {
			rec := appRecords(fmt.Sprintf("com.example.app%d", a), perApp)
			if err := im.PutApp(b.Context(), rec); err != nil {
				b.Fatal(err)
			}
			evs := make([]ota.Event, 0, perApp)
			for _, bn := range rec.Bundles {
				want.LastSeq++
				evs = append(evs, ota.Event{Seq: want.LastSeq, Time: bn.UploadedAt, Actor: "ci", Type: ota.EventUpload, AppID: bn.AppID,
					Channel: "production", Version: bn.Version, From: "", To: bn.Version, SHA256: bn.SHA256})
			}
			if err := im.PutEvents(b.Context(), evs); err != nil {
				b.Fatal(err)
			}
		}
		want.Apps, want.Channels, want.Bundles, want.Events = apps, apps, apps*perApp, apps*perApp
		if err := im.Finish(b.Context(), want); err != nil {
			b.Fatal(err)
		}
	}
	appendStats := func(b *testing.B, s store.Store) {
		evs := make([]store.StoredStat, statsBatch)
		at := epoch
		for i := 0; i < stats; i += statsBatch {
			for j := range evs {
				ev := ota.StatsEvent{Action: "set"}
				ev.AppID, ev.DeviceID, ev.VersionName, ev.Platform = "com.example.app0", fmt.Sprintf("%08x-2c3e-4d5b-9a65-2f4f1a1e7c11", i+j), "1.0.42", "android"
				ev.VersionBuild, ev.VersionOS, ev.PluginVersion = "1.0.0", "14", "8.51.14"
				raw, _ := json.Marshal(ev)
				at = at.Add(time.Millisecond)
				evs[j] = store.StoredStat{Received: at, Event: ev, Raw: raw}
			}
			if err := s.AppendStats(b.Context(), evs); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("postgres", func(b *testing.B) {
		url := testengine.Postgres(b)
		s := openURL(b, url, postgres.Options{StatsMaxPerApp: 2 * stats})
		conn, err := pgx.Connect(b.Context(), url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(b.Context())
		size := func(tables ...string) float64 {
			var total int64
			for _, t := range tables {
				var n int64
				if err := conn.QueryRow(b.Context(), "SELECT pg_total_relation_size($1)", t).Scan(&n); err != nil {
					b.Fatal(err)
				}
				total += n
			}
			return float64(total) / 1e6
		}
		for b.Loop() {
			im, err := s.Import(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			fill(b, s, im)
			appendStats(b, s)
		}
		if _, err := conn.Exec(b.Context(), "VACUUM ANALYZE"); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(size("bundles"), "MB-bundles/100k")
		b.ReportMetric(size("channels"), "MB-channels/100k")
		b.ReportMetric(size("events"), "MB-events/100k")
		b.ReportMetric(size("stats"), "MB-stats/1M")
	})
	b.Run("bolt", func(b *testing.B) {
		s := bolttest.New(b, bolt.Options{StatsMaxPerApp: 2 * stats})
		var before int64
		for b.Loop() {
			im, err := s.Import(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			fill(b, s, im)
			if fi, err := os.Stat(s.Path()); err == nil {
				before = fi.Size()
			}
			appendStats(b, s)
		}
		fi, err := os.Stat(s.Path())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(before)/1e6, "MB-file-with-100k-bundles")
		b.ReportMetric(float64(fi.Size()-before)/1e6, "MB-file-growth/1M-stats")
	})
}

// appRecords is an app with one channel that released n web bundles.
func appRecords(app string, n int) storecopy.AppRecords {
	r := storecopy.AppRecords{App: ota.App{ID: app, DefaultChannel: "production", CreatedAt: epoch}}
	ch := ota.Channel{AppID: app, Name: "production", ID: 1, Kind: ota.KindWeb, Policy: ota.DefaultChannelPolicy(), UpdatedAt: epoch}
	for i := range n {
		at := epoch.Add(time.Duration(i) * time.Minute)
		v := fmt.Sprintf("1.%d.%d", i/100, i%100)
		r.Bundles = append(r.Bundles, ota.Bundle{AppID: app, Version: v, Kind: ota.KindWeb, SHA256: storetest.Sum(app + v),
			Size: 4 << 20, UploadedAt: at, UploadedBy: "ci", Notes: "build " + v + " from main", MinNative: "1.0.0"})
		ch.Releases = append(ch.Releases, ota.Release{Version: v, DeployedAt: at})
		ch.Active = v
	}
	r.Channels = []ota.Channel{ch}
	return r
}
