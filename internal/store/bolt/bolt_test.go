package bolt_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/store/bolt/bolttest"
	"github.com/otaship/ota/internal/store/storetest"
	"github.com/otaship/ota/pkg/ota"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return bolttest.New(t, bolt.Options{}) })
}

func TestConformanceStatsLimits(t *testing.T) {
	storetest.RunStatsLimits(t, func(t *testing.T, lim store.StatsLimits) store.Store {
		return bolttest.New(t, bolt.Options{StatsMaxPerApp: lim.MaxEventsPerApp, StatsMaxBytesPerApp: lim.MaxBytesPerApp})
	})
}

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func publish(t *testing.T, s store.Store, app, channel, kind, version string) ota.UploadResult {
	t.Helper()
	res, err := s.Publish(t.Context(), store.PublishInput{
		Bundle:  ota.Bundle{AppID: app, Version: version, Kind: kind, SHA256: storetest.Sum(kind + app + version), Size: 42},
		Channel: channel, Actor: "alice", Time: epoch,
	})
	if err != nil {
		t.Fatalf("publish %s %s %s: %v", app, channel, version, err)
	}
	return res
}

// dump is everything a store holds that the API can read, as JSON, for
// comparing two stores.
func dump(t *testing.T, s store.Store) string {
	t.Helper()
	ctx := t.Context()
	out := map[string]any{}
	var err error
	must := func(v any, e error) any {
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	apps, e := s.ListApps(ctx)
	must(nil, e)
	out["apps"] = apps
	for _, a := range apps {
		out["channels/"+a.ID] = must(s.ListChannels(ctx, a.ID))
		out["bundles/"+a.ID] = must(s.ListBundles(ctx, a.ID))
		out["stats/"+a.ID] = must(s.Stats(ctx, a.ID, time.Time{}, 0))
	}
	out["users"] = must(s.ListUsers(ctx))
	out["state"] = must(s.LoadState(ctx))
	out["refs"] = must(s.ReferencedBlobs(ctx))
	evs, _, e := s.History(ctx, store.HistoryQuery{Limit: 500})
	must(nil, e)
	out["history"] = evs
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	raw, e := json.MarshalIndent(out, "", " ")
	if e != nil {
		t.Fatalf("dump: %v", e)
	}
	return string(raw)
}

// fill gives a store some of everything.
func fill(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	publish(t, s, "a", "stable", ota.KindWeb, "1.0.0")
	publish(t, s, "a", "stable", ota.KindWeb, "1.1.0")
	publish(t, s, "a", "apk", ota.KindAPK, "1.0.0")
	publish(t, s, "b", "beta", ota.KindWeb, "2.0.0")
	steps := []error{
		func() error { _, err := s.Promote(ctx, "a", "", "stable", "production", "alice", epoch); return err }(),
		func() error { _, err := s.Rollback(ctx, "a", "stable", "", "alice", epoch); return err }(),
		func() error {
			_, err := s.DeleteRelease(ctx, "b", "beta", "2.0.0", "alice", epoch)
			return err
		}(),
		func() error {
			no := false
			_, err := s.UpdateChannel(ctx, "a", "production", ota.ChannelPolicyPatch{IOS: &no}, "alice", epoch)
			return err
		}(),
		s.SetOverride(ctx, store.DeviceOverride{AppID: "a", DeviceID: "Dev-1", Channel: "production"}, "alice", epoch),
		s.CreateUser(ctx, store.User{Name: "alice", PasswordHash: []byte("hash"), CreatedAt: epoch}),
		s.AppendStats(ctx, []store.StoredStat{{Received: epoch, Event: ota.StatsEvent{DeviceInfo: ota.DeviceInfo{AppID: "a", DeviceID: "d"}, Action: "set"}}}),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("fill step %d: %v", i, err)
		}
	}
}

func TestReopenPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ota.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s)
	before := dump(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	s2 := bolttest.Open(t, path, bolt.Options{})
	if after := dump(t, s2); after != before {
		t.Errorf("reopened store differs:\nbefore: %s\nafter: %s", before, after)
	}
	// Sequences go on where they stopped.
	publish(t, s2, "a", "stable", ota.KindWeb, "1.2.0")
	evs, _, err := s2.History(t.Context(), store.HistoryQuery{Limit: 2})
	if err != nil || len(evs) != 2 || evs[0].Seq != evs[1].Seq+1 {
		t.Errorf("history after reopen = %+v, %v; want consecutive seqs", evs, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode = %v; want 0600", mode)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ota.db")
	bolttest.Open(t, path, bolt.Options{})
	start := time.Now()
	s, err := bolt.Open(path, bolt.Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("second open of a held file succeeded")
	}
	if !errors.Is(err, bolt.ErrLocked) {
		t.Errorf("second open = %v; want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "in use by another otad") || !strings.Contains(err.Error(), path) {
		t.Errorf("message %q should say the data dir is in use and name the file", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second open took %v; want about the timeout", d)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
	}{
		{"missing directory", filepath.Join(dir, "nope", "ota.db")},
		{"not a bbolt file", garbage},
		{"a directory", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := bolt.Open(tt.path, bolt.Options{})
			if err == nil {
				s.Close()
				t.Fatal("open succeeded")
			}
			if errors.Is(err, bolt.ErrLocked) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("open = %v; want an error naming %s, not ErrLocked", err, tt.path)
			}
		})
	}
}

func TestBackupRestores(t *testing.T) {
	s := bolttest.New(t, bolt.Options{})
	fill(t, s)
	var buf bytes.Buffer
	n, err := s.Backup(t.Context(), &buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("backup = %d, %v (wrote %d)", n, err, buf.Len())
	}
	path := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := bolttest.Open(t, path, bolt.Options{})
	if got, want := dump(t, restored), dump(t, s); got != want {
		t.Errorf("restored store differs:\ngot: %s\nwant: %s", got, want)
	}
}

func TestStatsBound(t *testing.T) {
	const max = 10
	s := bolttest.New(t, bolt.Options{StatsMaxPerApp: max})
	ctx := t.Context()
	publish(t, s, "a", "stable", ota.KindWeb, "1.0.0")
	publish(t, s, "b", "stable", ota.KindWeb, "1.0.0")
	stat := func(app string, i int) store.StoredStat {
		return store.StoredStat{Received: epoch.Add(time.Duration(i) * time.Second),
			Event: ota.StatsEvent{DeviceInfo: ota.DeviceInfo{AppID: app, DeviceID: "d"}, Action: fmt.Sprint(i)}}
	}
	// One big batch, then many concurrent small ones: db.Batch merges them.
	var big []store.StoredStat
	for i := range 25 {
		big = append(big, stat("a", i))
	}
	if err := s.AppendStats(ctx, big); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 25; i < 65; i++ {
		wg.Go(func() {
			errs <- s.AppendStats(ctx, []store.StoredStat{stat("a", i), stat("b", i)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	for _, app := range []string{"a", "b"} {
		got, err := s.Stats(ctx, app, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != max {
			t.Fatalf("app %s keeps %d stats; want %d", app, len(got), max)
		}
		for i, st := range got {
			if want := fmt.Sprint(55 + i); st.Event.Action != want {
				t.Errorf("app %s stat %d = %s; want %s (the newest, oldest first)", app, i, st.Event.Action, want)
			}
		}
	}
}

// TestConcurrentWrites runs publishes and rollbacks from many goroutines
// and checks that every successful write is in the history exactly once,
// with gapless sequence numbers.
func TestConcurrentWrites(t *testing.T) {
	s := bolttest.New(t, bolt.Options{})
	ctx := t.Context()
	const workers, rounds = 6, 8
	var (
		mu   sync.Mutex
		want = map[string]int{}
	)
	record := func(key string) {
		mu.Lock()
		want[key]++
		mu.Unlock()
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*3)
	for w := range workers {
		wg.Go(func() {
			own := fmt.Sprintf("c%d", w)
			for r := range rounds {
				v := fmt.Sprintf("%d.%d.0", w, r)
				for _, ch := range []string{own, "shared"} {
					_, err := s.Publish(ctx, store.PublishInput{
						Bundle:  ota.Bundle{AppID: "app", Version: v, Kind: ota.KindWeb, SHA256: storetest.Sum(v)},
						Channel: ch, Actor: "w", Time: time.Now(),
					})
					if err != nil {
						errs <- err
						return
					}
					typ := ota.EventUpload
					if ch == "shared" {
						typ = ota.EventActivate // the bytes were stored by the publish to own
					}
					record(typ + " " + ch + " " + v)
				}
				if r%2 == 1 {
					res, err := s.Rollback(ctx, "app", own, "", "w", time.Now())
					if err != nil {
						errs <- err
						return
					}
					record(ota.EventRollback + " " + own + " " + res.To)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent write: %v", err)
	}
	var all []ota.Event
	var before uint64
	for {
		page, next, err := s.History(ctx, store.HistoryQuery{Before: before, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if next == 0 {
			break
		}
		before = next
	}
	got := map[string]int{}
	for i, ev := range all {
		if ev.Seq != uint64(len(all)-i) {
			t.Fatalf("event %d has seq %d; want %d (gapless, newest first)", i, ev.Seq, len(all)-i)
		}
		got[ev.Type+" "+ev.Channel+" "+ev.Version]++
	}
	total := 0
	for k, n := range want {
		total += n
		if got[k] != n {
			t.Errorf("%q is in the history %d times; want %d", k, got[k], n)
		}
	}
	if len(all) != total {
		t.Errorf("history has %d events; want %d", len(all), total)
	}
}
