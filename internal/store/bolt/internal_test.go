package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

func schemaOf(t *testing.T, path string) uint64 {
	t.Helper()
	s, err := open(path, Options{}, migrations)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer s.Close()
	v, err := s.SchemaVersion()
	if err != nil {
		t.Fatalf("schema version: %v", err)
	}
	return v
}

// rawUpdate changes the file with bbolt directly, as a damaged or foreign
// file would look.
func rawUpdate(t *testing.T, path string, fn func(*bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("raw open: %v", err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatalf("raw update: %v", err)
	}
}

func TestMigrations(t *testing.T) {
	var ran []int
	step := func(i int, err error) func(*bbolt.Tx) error {
		return func(tx *bbolt.Tx) error {
			ran = append(ran, i)
			if err != nil {
				return err
			}
			_, err := tx.CreateBucketIfNotExists(fmt.Appendf(nil, "m%d", i))
			return err
		}
	}
	boom := errors.New("boom")
	path := filepath.Join(t.TempDir(), "ota.db")

	tests := []struct {
		name       string
		migs       []func(*bbolt.Tx) error
		wantRan    []int
		wantErr    error
		wantSchema uint64
	}{
		{"new file runs every migration", append(migrations[:1:1], step(2, nil)), []int{2}, nil, 2},
		{"reopen runs none", append(migrations[:1:1], step(2, nil)), nil, nil, 2},
		{"a new migration runs alone", append(migrations[:1:1], step(2, nil), step(3, nil)), []int{3}, nil, 3},
		{"a failing migration keeps the old version", append(migrations[:1:1], step(2, nil), step(3, nil), step(4, boom), step(5, nil)), []int{4}, boom, 3},
		{"older code refuses a newer file", migrations[:1:1], nil, ErrSchemaTooNew, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran = nil
			s, err := open(path, Options{}, tt.migs)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("open = %v; want %v", err, tt.wantErr)
			}
			if err == nil {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if fmt.Sprint(ran) != fmt.Sprint(tt.wantRan) {
				t.Errorf("ran migrations %v; want %v", ran, tt.wantRan)
			}
			var v uint64
			rawUpdate(t, path, func(tx *bbolt.Tx) error {
				v = btoi(tx.Bucket(bMeta).Get(kSchema))
				return nil
			})
			if v != tt.wantSchema {
				t.Errorf("schema version = %d; want %d", v, tt.wantSchema)
			}
		})
	}
	// A file one version ahead of this otad's migrations.
	ahead := uint64(len(migrations) + 1)
	rawUpdate(t, path, func(tx *bbolt.Tx) error { return tx.Bucket(bMeta).Put(kSchema, itob(ahead)) })
	if err := func() error { _, err := open(path, Options{}, migrations); return err }(); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf("schema version %d", ahead)) || !strings.Contains(err.Error(), fmt.Sprintf("knows up to %d", len(migrations))) {
		t.Errorf("too-new message = %v; want both versions named", err)
	}
}

func btoi(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func TestSchemaCurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ota.db")
	if v := schemaOf(t, path); v != uint64(len(migrations)) {
		t.Errorf("new file schema = %d; want %d", v, len(migrations))
	}
	rawUpdate(t, path, func(tx *bbolt.Tx) error { return tx.Bucket(bMeta).Put(kSchema, []byte{1}) })
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("open with a 1-byte schema version = %v; want a damaged-file error", err)
	}
}

// TestLoadStateSkipsHistoryAndStats proves LoadState reads neither the
// history nor the stats: it still works when every event and stat is
// unreadable. That is what keeps otad's start fast with millions of events.
func TestLoadStateSkipsHistoryAndStats(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "ota.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if _, err := s.Publish(ctx, store.PublishInput{
			Bundle: ota.Bundle{AppID: "a", Version: v, Kind: ota.KindWeb, SHA256: "aa" + v}, Channel: "stable", Actor: "x",
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendStats(ctx, []store.StoredStat{{Event: ota.StatsEvent{DeviceInfo: ota.DeviceInfo{AppID: "a"}, Action: "set"}}}); err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		garble := func(b *bbolt.Bucket) error {
			var keys [][]byte
			_ = b.ForEach(func(k, v []byte) error {
				if v != nil {
					keys = append(keys, append([]byte(nil), k...))
				}
				return nil
			})
			for _, k := range keys {
				if err := b.Put(k, []byte("{not json")); err != nil {
					return err
				}
			}
			return nil
		}
		if err := garble(tx.Bucket(bEvents)); err != nil {
			return err
		}
		return garble(tx.Bucket(bApps).Bucket([]byte("a")).Bucket(bStats))
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.LoadState(ctx)
	if err != nil {
		t.Fatalf("load state with unreadable history and stats: %v", err)
	}
	if len(st.Channels) != 1 || st.Channels[0].Active != "1.1.0" || len(st.Bundles) != 2 {
		t.Errorf("state = %+v; want stable at 1.1.0 and two bundles", st)
	}
	if _, _, err := s.History(ctx, store.HistoryQuery{}); err == nil {
		t.Errorf("history of garbled events succeeded; the test no longer proves anything")
	}
}

// populate writes n events over two channels of app "a" in large
// transactions, through the same appendEvent the write methods use.
func populate(tb testing.TB, s *Store, n int) {
	tb.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const perTx = 10000
	for done := 0; done < n; {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			a, err := ensureApp(tx, "a", now)
			if err != nil {
				return err
			}
			for i := 0; i < perTx && done < n; i++ {
				ch := []string{"stable", "beta"}[done%2]
				if _, err := a.appendEvent(eventRecord{
					Time: now, Actor: "bench", Type: ota.EventUpload, Channel: ch,
					Version: fmt.Sprintf("1.0.%d", done), To: fmt.Sprintf("1.0.%d", done), SHA256: strings.Repeat("ab", 32),
				}); err != nil {
					return err
				}
				done++
			}
			for _, ch := range []string{"stable", "beta"} {
				c, err := a.ensureChannel(ch, ota.KindWeb, now)
				if err != nil {
					return err
				}
				if err := a.putChannel(c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatalf("populate: %v", err)
		}
	}
}

// BenchmarkHistoryPage shows that a page of history costs the same at 10k
// and 100k events: compare ns/op and allocs/op across the sizes.
func BenchmarkHistoryPage(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		s, err := Open(filepath.Join(b.TempDir(), "ota.db"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		populate(b, s, n)
		queries := []struct {
			name string
			q    store.HistoryQuery
		}{
			{"all/newest", store.HistoryQuery{Limit: 50}},
			{"app/middle", store.HistoryQuery{AppID: "a", Before: uint64(n / 2), Limit: 50}},
			{"channel/oldest", store.HistoryQuery{AppID: "a", Channel: "beta", Before: 200, Limit: 50}},
		}
		for _, q := range queries {
			b.Run(fmt.Sprintf("events=%d/%s", n, q.name), func(b *testing.B) {
				b.ReportAllocs()
				ctx := context.Background()
				for b.Loop() {
					page, _, err := s.History(ctx, q.q)
					if err != nil || len(page) != 50 {
						b.Fatalf("page = %d events, %v", len(page), err)
					}
				}
			})
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEncodeStatRaw: a stat stored from the device's bytes is the record
// encoding/json would write for the same event, when the bytes are what
// encoding/json writes for it.
func TestEncodeStatRaw(t *testing.T) {
	yes := true
	events := []ota.StatsEvent{
		{},
		{DeviceInfo: ota.DeviceInfo{AppID: "a", DeviceID: "d", IsProd: &yes}, Action: "set", Timestamp: 17, Metadata: map[string]string{"b": "<&>", "a": "x"}},
	}
	for i, ev := range events {
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		st := store.StoredStat{Received: time.Date(2026, 11, 27, 1, 2, 3, 456, time.UTC), Event: ev, Unverified: i == 1}
		want, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		st.Raw = raw
		got, err := encodeStat(&st)
		if err != nil || string(got) != string(want) {
			t.Fatalf("encodeStat with Raw = %s, %v; want %s", got, err, want)
		}
	}
	// A time JSON cannot hold is an error, as with json.Marshal.
	if _, err := encodeStat(&store.StoredStat{Received: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Raw: []byte(`{}`)}); err == nil {
		t.Fatal("encodeStat accepted the year 10000")
	}
}

// TestMigrateToDelta opens a file of schema 2 with an app in it: the
// migration gives the app the buckets delta releases need.
func TestMigrateToDelta(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ota.db")
	old, err := open(path, Options{}, migrations[:2])
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	pub := func(s *Store, version string, files []ota.ManifestFile) error {
		_, err := s.Publish(ctx, store.PublishInput{
			Bundle:  ota.Bundle{AppID: "a", Version: version, Kind: ota.KindWeb, SHA256: strings.Repeat("a", 63) + version[:1]},
			Channel: "stable", Actor: "t", Time: time.Now(), Manifest: files,
		})
		return err
	}
	if err := pub(old, "1.0.0", nil); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open after the migration: %v", err)
	}
	defer s.Close()
	files := []ota.ManifestFile{{Path: "index.html", SHA256: strings.Repeat("b", 64), Size: 1, Raw: strings.Repeat("b", 64), RawSize: 1}}
	if err := pub(s, "2.0.0", files); err != nil {
		t.Fatalf("publish a delta release to an app made before the migration: %v", err)
	}
	if got, err := s.Manifest(ctx, "a", "2.0.0"); err != nil || len(got) != 1 {
		t.Errorf("manifest = %v, %v", got, err)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}

// Users stored before user ids existed get one when the file is opened.
func TestMigrationGivesUsersIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ota.db")
	old, err := open(path, Options{}, migrations[:3])
	if err != nil {
		t.Fatal(err)
	}
	err = old.db.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{"alice", "bob"} {
			if err := put(tx.Bucket(bUsers), []byte(name), userRecord{Name: name, PasswordHash: []byte("h")}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	users, err := s.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].ID == "" || users[1].ID == "" || users[0].ID == users[1].ID {
		t.Errorf("users after the migration = %+v; want two with distinct ids", users)
	}
}

// Pins stored before pins had owners are a bare channel name; the
// migration makes those a legacy plugin set itself the device's own.
func TestMigrationMarksDevicePins(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ota.db")
	old, err := open(path, Options{}, migrations[:4])
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"stable", "beta"} {
		if _, err := old.Publish(ctx, store.PublishInput{Bundle: ota.Bundle{AppID: "a", Version: "1.0.0", Kind: ota.KindWeb, SHA256: "aa"}, Channel: ch, Actor: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	pin := func(dev, ch, actor string) {
		t.Helper()
		if err := old.SetOverride(ctx, store.DeviceOverride{AppID: "a", DeviceID: dev, Channel: ch}, actor, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	pin("self", "stable", "device:self")
	pin("admin", "beta", "alice")
	pin("both", "stable", "device:both")
	pin("both", "beta", "alice") // the admin's came last
	// Write them as the older otad did: bare channel names.
	err = old.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bApps).Bucket([]byte("a")).Bucket(bOverrides)
		for dev, ch := range map[string]string{"self": "stable", "admin": "beta", "both": "beta"} {
			if err := b.Put([]byte(dev), []byte(ch)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.LoadAppState(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.DeviceOverride{}
	for _, o := range st.Overrides {
		got[o.DeviceID] = o
	}
	want := map[string]store.DeviceOverride{
		"self":  {AppID: "a", DeviceID: "self", Channel: "stable", ByDevice: true},
		"admin": {AppID: "a", DeviceID: "admin", Channel: "beta"},
		"both":  {AppID: "a", DeviceID: "both", Channel: "beta"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pins after the migration = %+v; want %+v", got, want)
	}
}

// With the disk nearly full, device stats are refused first: uploads and
// rollbacks keep the room.
func TestStatsRefusedBeforeTheDiskFills(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "ota.db"), Options{StatsReserveBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	free := uint64(2 << 30)
	s.reserve.free = func(string) (uint64, bool) { return free, true }
	pub := func(v string) error {
		_, err := s.Publish(ctx, store.PublishInput{Bundle: ota.Bundle{AppID: "a", Version: v, Kind: ota.KindWeb, SHA256: "aa" + v}, Channel: "stable", Actor: "x"})
		return err
	}
	stat := []store.StoredStat{{Event: ota.StatsEvent{DeviceInfo: ota.DeviceInfo{AppID: "a", DeviceID: "d"}, Action: "set"}}}
	if err := pub("1.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendStats(ctx, stat); err != nil {
		t.Fatalf("stats with room to spare: %v", err)
	}
	free = 100 << 20
	s.reserve.checked = time.Time{} // look again now
	if err := s.AppendStats(ctx, stat); !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("stats with 100 MB free and a 1 GiB reserve: %v, want ErrStorageFull", err)
	}
	if err := pub("1.0.1"); err != nil {
		t.Errorf("upload with the reserve left: %v", err)
	}
	if _, err := s.Rollback(ctx, "a", "stable", "", "x", time.Time{}); err != nil {
		t.Errorf("rollback with the reserve left: %v", err)
	}
}

// Files from before the byte bound have no byte count: it is added up at
// the first append, not started at zero.
func TestStatsBytesOfOldFiles(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "ota.db"), Options{StatsReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Publish(ctx, store.PublishInput{Bundle: ota.Bundle{AppID: "a", Version: "1.0.0", Kind: ota.KindWeb, SHA256: "aa"}, Channel: "stable", Actor: "x"}); err != nil {
		t.Fatal(err)
	}
	var batch []store.StoredStat
	for i := range 20 {
		batch = append(batch, store.StoredStat{Event: ota.StatsEvent{DeviceInfo: ota.DeviceInfo{AppID: "a", DeviceID: fmt.Sprint("d", i)}, Action: "set"}})
	}
	if err := s.AppendStats(ctx, batch); err != nil {
		t.Fatal(err)
	}
	real := func() (sum, counted uint64) {
		_ = s.db.View(func(tx *bbolt.Tx) error {
			ab := tx.Bucket(bApps).Bucket([]byte("a"))
			_ = ab.Bucket(bStats).ForEach(func(k, v []byte) error { sum += uint64(statSize(k, v)); return nil })
			counted = btoi(ab.Get(kStatsB))
			return nil
		})
		return sum, counted
	}
	if sum, counted := real(); sum != counted || sum == 0 {
		t.Fatalf("bytes counted %d, stored %d", counted, sum)
	}
	rawUpdate := func(fn func(*bbolt.Tx) error) {
		if err := s.db.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	rawUpdate(func(tx *bbolt.Tx) error { return tx.Bucket(bApps).Bucket([]byte("a")).Delete(kStatsB) })
	if err := s.AppendStats(ctx, batch[:5]); err != nil {
		t.Fatal(err)
	}
	if sum, counted := real(); sum != counted {
		t.Errorf("after the first append to an old file: bytes counted %d, stored %d", counted, sum)
	}
}

// FuzzOfferRecord: an offer record reads back as written, and no bytes
// make decodeOffer panic or read past its value.
func FuzzOfferRecord(f *testing.F) {
	f.Add(uint64(1), "com.example.app", "production", "1.0.0", "0.9.0", "beta", int64(1760000000), 3, []byte{1, 0})
	f.Add(uint64(1<<63), "", "", "", "", "", int64(0), 0, []byte{})
	f.Fuzz(func(t *testing.T, key uint64, app, channel, version, prev, prevCh string, at int64, count int, junk []byte) {
		if key == 0 || count < 0 || at < 0 || at > 1<<32-1 {
			return
		}
		id := func(b []byte) string { return string(b) }
		// 0 is no time (a device only checked has no offer times).
		tm := time.Time{}
		if at != 0 {
			tm = time.Unix(at, 0).UTC()
		}
		o := store.DeviceOffer{Device: key, AppID: app, Channel: channel, Version: version, Previous: prev, PreviousChannel: prevCh,
			First: tm, Last: tm, Count: count, Seen: tm, Running: version, RunningChannel: channel, Flags: uint16(count),
			Build: prev, Plugin: prevCh}
		got, err := decodeOffer(itob(key), encodeOffer(&o), id)
		if err != nil {
			t.Fatalf("decode of an encoded record: %v", err)
		}
		if count > 1<<32-1 {
			o.Count = 1<<32 - 1
		}
		if got != o {
			t.Fatalf("read back %+v; wrote %+v", got, o)
		}
		_, _ = decodeOffer(itob(key), junk, id) // must not panic
	})
}

// A record written before the latest check's fields (format 1) still
// reads, with those fields empty.
func TestOfferFormat1(t *testing.T) {
	v := []byte{offerFormat1, 0x68, 0xe6, 0x6b, 0x00, 0x68, 0xe6, 0x6b, 0x3c, 0, 0, 0, 2}
	for _, s := range []string{"com.example.app", "production", "1.0.0", "", ""} {
		v = append(v, byte(len(s)))
		v = append(v, s...)
	}
	o, err := decodeOffer(itob(5), v, func(b []byte) string { return string(b) })
	if err != nil || o.AppID != "com.example.app" || o.Version != "1.0.0" || o.Count != 2 || o.Running != "" || !o.Seen.IsZero() ||
		o.First.Unix() != 0x68e66b00 {
		t.Errorf("format 1 record = %+v, %v", o, err)
	}
}
