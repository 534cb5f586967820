package crashtest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otaship/ota/pkg/ota"
)

// These tests feed the invariant checks broken states on purpose: a check
// that cannot fail proves nothing about otad.

const appA = "com.example.a"

func ev(seq uint64, typ, channel, version, from, to string) ota.Event {
	return ota.Event{Seq: seq, Type: typ, AppID: appA, Channel: channel, Version: version, From: from, To: to}
}

// goodHistory uploads 1.0.0 and 1.0.1 to production, rolls back, promotes
// 1.0.0 to beta and deletes 1.0.1 from production.
func goodHistory() []ota.Event {
	return []ota.Event{
		ev(1, ota.EventUpload, "production", "1.0.0", "", "1.0.0"),
		ev(2, ota.EventUpload, "production", "1.0.1", "1.0.0", "1.0.1"),
		ev(3, ota.EventRollback, "production", "1.0.0", "1.0.1", "1.0.0"),
		ev(4, ota.EventPromote, "beta", "1.0.0", "", "1.0.0"),
		ev(5, ota.EventDelete, "production", "1.0.1", "1.0.0", "1.0.0"),
	}
}

func goodChannels() []ota.Channel {
	return []ota.Channel{
		{AppID: appA, Name: "production", Active: "1.0.0", Releases: []ota.Release{{Version: "1.0.0"}}},
		{AppID: appA, Name: "beta", Active: "1.0.0", Releases: []ota.Release{{Version: "1.0.0"}}},
	}
}

func keysOf(evs []ota.Event) []evKey {
	var ks []evKey
	for _, e := range evs {
		ks = append(ks, keyOf(e))
	}
	return ks
}

func TestHistoryChecksCatchViolations(t *testing.T) {
	tests := []struct {
		name   string
		mutate func([]ota.Event) []ota.Event
		want   string // "" means no violation
	}{
		{"intact", func(h []ota.Event) []ota.Event { return h }, ""},
		{"lost event", func(h []ota.Event) []ota.Event { return append(h[:1], h[2:]...) }, "missing from history"},
		{"duplicated event", func(h []ota.Event) []ota.Event { return append(h, withSeq(h[2], 6)) }, "no acknowledged write explains"},
		{"gap in seq", func(h []ota.Event) []ota.Event { h[4].Seq = 7; return h }, "gap or duplicate"},
		{"out of order", func(h []ota.Event) []ota.Event { h[3], h[4] = h[4], h[3]; return h }, "out of order"},
		{"altered target", func(h []ota.Event) []ota.Event { h[2].To = "1.0.1"; return h }, "missing from history"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := keysOf(goodHistory())
			got := tt.mutate(goodHistory())
			bad := append(checkSeqs(got, true), matchMultiset(want, got)...)
			assertViolation(t, bad, tt.want)
		})
	}
}

func withSeq(e ota.Event, seq uint64) ota.Event { e.Seq = seq; return e }

func TestChainCheckCatchesLostUpdates(t *testing.T) {
	tests := []struct {
		name   string
		hist   func() []ota.Event
		chans  func() []ota.Channel
		wantIn string
	}{
		{"intact", goodHistory, goodChannels, ""},
		{"write applied on stale state", func() []ota.Event {
			h := goodHistory()
			h[2].From = "1.0.0" // rollback claims production served 1.0.0, but 1.0.1 was uploaded
			return h
		}, goodChannels, "starts from"},
		{"pointer differs from last write", goodHistory, func() []ota.Channel {
			c := goodChannels()
			c[0].Active = "1.0.1"
			return c
		}, "serves \"1.0.1\""},
		{"releases differ", goodHistory, func() []ota.Channel {
			c := goodChannels()
			c[1].Releases = nil
			return c
		}, "has releases"},
		{"channel without writes", goodHistory, func() []ota.Channel {
			return append(goodChannels(), ota.Channel{AppID: appA, Name: "dev"})
		}, "no acknowledged or recorded write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := checkChains(tt.hist(), map[string][]ota.Channel{appA: tt.chans()})
			assertViolation(t, bad, tt.wantIn)
		})
	}
}

func TestResolveInterruptedWrite(t *testing.T) {
	hist := goodHistory()
	upload := op{typ: ota.EventUpload, channel: "production", version: "1.0.2"}
	tests := []struct {
		name     string
		acked    int // events of hist the worker saw acknowledged
		pending  *pendingOp
		got      []ota.Event
		wantIn   string
		wantDone bool
	}{
		{"acknowledged and present", 5, nil, hist, "", false},
		{"interrupted, not done", 5, &pendingOp{op: upload, from: "1.0.0"}, hist, "", false},
		{"interrupted, done", 5, &pendingOp{op: upload, from: "1.0.0"},
			append(goodHistory(), ev(6, ota.EventUpload, "production", "1.0.2", "1.0.0", "1.0.2")), "", true},
		{"interrupted, done on a stale state", 5, &pendingOp{op: upload, from: "1.0.0"},
			append(goodHistory(), ev(6, ota.EventUpload, "production", "1.0.2", "1.0.1", "1.0.2")), "no write explains", false},
		{"unacknowledged event without a pending write", 4, nil, hist, "no write explains", false},
		{"acknowledged event lost", 5, nil, hist[:4], "lost 1 acknowledged", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newAppWorker(appA, newRand(1, 1))
			for _, k := range keysOf(hist[:tt.acked]) {
				w.record(k)
			}
			w.pending = tt.pending
			assertViolation(t, w.resolve(tt.got), tt.wantIn)
			if done := w.stats.completed == 1; done != tt.wantDone {
				t.Errorf("interrupted write counted done=%v, want %v", done, tt.wantDone)
			}
			if w.pending != nil {
				t.Error("resolve left the interrupted write pending")
			}
		})
	}
}

func TestBlobDirCheckCatchesDamage(t *testing.T) {
	content := []byte("bundle bytes")
	sum := sha256.Sum256(content)
	key := hex.EncodeToString(sum[:])
	tests := []struct {
		name   string
		files  map[string][]byte // relative path → content
		wantIn string
	}{
		{"intact", map[string][]byte{"sha256/" + key[:2] + "/" + key: content}, ""},
		{"half-written blob", map[string][]byte{"sha256/" + key[:2] + "/" + key: content[:5]}, "half-written"},
		{"leftover temp file", map[string][]byte{"tmp/put-123": content}, "temp dir holds"},
		{"blob in the wrong shard", map[string][]byte{"sha256/00/" + key: content}, "unexpected file"},
		{"stray file", map[string][]byte{"sha256/notes.txt": content}, "unexpected file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
				t.Fatal(err)
			}
			for rel, b := range tt.files {
				p := filepath.Join(dir, filepath.FromSlash(rel))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			assertViolation(t, checkBlobDir(dir, map[string]blobStamp{}), tt.wantIn)
		})
	}
}

func TestBundleCheckCatchesDanglingPointers(t *testing.T) {
	dir := t.TempDir()
	live := ota.Bundle{AppID: appA, Version: "1.0.0", SHA256: strings.Repeat("a", 64)}
	p := blobPath(dir, live.SHA256)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	chans := []ota.Channel{{AppID: appA, Name: "production", Active: "1.0.0", ActiveBundle: &live, Releases: []ota.Release{{Version: "1.0.0"}}}}
	shas := map[string]string{"1.0.0": live.SHA256}
	tests := []struct {
		name    string
		bundles func() []ota.Bundle
		shas    map[string]string
		wantIn  string
	}{
		{"intact", func() []ota.Bundle { return []ota.Bundle{live} }, shas, ""},
		{"active bundle missing", func() []ota.Bundle { return nil }, shas, "no bundle record"},
		{"active bundle deleted", func() []ota.Bundle { b := live; b.Deleted = true; return []ota.Bundle{b} }, shas, "marked deleted"},
		{"other bytes recorded", func() []ota.Bundle { return []ota.Bundle{live} }, map[string]string{"1.0.0": strings.Repeat("b", 64)}, "its upload sent"},
		{"bytes missing", func() []ota.Bundle {
			b := live
			b.Version, b.SHA256 = "1.0.1", strings.Repeat("c", 64)
			return []ota.Bundle{live, b}
		}, map[string]string{"1.0.0": live.SHA256, "1.0.1": strings.Repeat("c", 64)}, "bytes are not stored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertViolation(t, checkBundles(appA, tt.bundles(), chans, tt.shas, dir), tt.wantIn)
		})
	}
}

// assertViolation checks that bad is empty when want is "", and otherwise
// that some violation mentions want.
func assertViolation(t *testing.T, bad []string, want string) {
	t.Helper()
	if want == "" {
		for _, b := range bad {
			t.Errorf("unexpected violation: %s", b)
		}
		return
	}
	for _, b := range bad {
		if strings.Contains(b, want) {
			return
		}
	}
	t.Errorf("no violation mentions %q; got %q", want, bad)
}
