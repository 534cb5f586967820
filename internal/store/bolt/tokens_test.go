package bolt_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
)

func TestTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ota.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	// A file that never held a token has no bucket: it reads as empty.
	if ts, err := s.ListTokens(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("ListTokens on a new file = %v, %v; want none", ts, err)
	}
	if _, err := s.GetToken(ctx, "0123456789abcdef"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetToken on a new file: %v, want ErrNotFound", err)
	}
	if _, err := s.RevokeToken(ctx, "0123456789abcdef", epoch); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RevokeToken on a new file: %v, want ErrNotFound", err)
	}

	a := store.CIToken{ID: "aaaa", Name: "ci", SecretHash: []byte{1, 2, 3}, AppID: "com.x", Channel: "beta",
		CreatedBy: "alice", CreatedAt: epoch.Add(time.Minute), ExpiresAt: epoch.Add(time.Hour)}
	b := store.CIToken{ID: "bbbb", Name: "old", SecretHash: []byte{4}, CreatedBy: "alice", CreatedAt: epoch, ExpiresAt: epoch.Add(time.Hour)}
	for _, tk := range []store.CIToken{a, b} {
		if err := s.CreateToken(ctx, tk); err != nil {
			t.Fatalf("create %s: %v", tk.ID, err)
		}
	}
	if err := s.CreateToken(ctx, a); !errors.Is(err, store.ErrConflict) {
		t.Errorf("create duplicate id: %v, want ErrConflict", err)
	}
	for _, bad := range []store.CIToken{{Name: "x", SecretHash: []byte{1}}, {ID: "c", SecretHash: []byte{1}}, {ID: "c", Name: "x"}} {
		if err := s.CreateToken(ctx, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("create %+v: %v, want ErrInvalid", bad, err)
		}
	}
	ts, err := s.ListTokens(ctx)
	if err != nil || len(ts) != 2 || ts[0].ID != "bbbb" || ts[1].ID != "aaaa" {
		t.Fatalf("ListTokens = %+v, %v; want bbbb then aaaa (oldest first)", ts, err)
	}

	r1, err := s.RevokeToken(ctx, "aaaa", epoch.Add(2*time.Minute))
	if err != nil || !r1.RevokedAt.Equal(epoch.Add(2*time.Minute)) {
		t.Fatalf("revoke = %+v, %v", r1, err)
	}
	r2, err := s.RevokeToken(ctx, "aaaa", epoch.Add(time.Hour))
	if err != nil || !r2.RevokedAt.Equal(r1.RevokedAt) {
		t.Errorf("second revoke = %+v, %v; want the first time kept", r2, err)
	}

	// Everything survives reopening the file.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetToken(ctx, "aaaa")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "ci" || got.AppID != "com.x" || got.Channel != "beta" || string(got.SecretHash) != "\x01\x02\x03" ||
		!got.ExpiresAt.Equal(a.ExpiresAt) || !got.RevokedAt.Equal(r1.RevokedAt) {
		t.Errorf("reopened token = %+v", got)
	}
}
