package bolt

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store"
)

// bTokens holds CI tokens: id → tokenRecord. It is created by the first
// token written, so files from before tokens existed need no migration; a
// missing bucket reads as no tokens.
var bTokens = []byte("tokens")

// tokenRecord is a CI token as stored.
type tokenRecord struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	SecretHash []byte    `json:"secret_hash"`
	AppID      string    `json:"app_id,omitempty"`
	Channel    string    `json:"channel,omitempty"`
	Protected  bool      `json:"protected,omitempty"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

func (r tokenRecord) wire() store.CIToken {
	t := store.CIToken(r)
	t.SecretHash = append([]byte(nil), r.SecretHash...)
	return t
}

// CreateToken stores a new CI token; ErrConflict when the id is taken.
func (s *Store) CreateToken(ctx context.Context, t store.CIToken) error {
	if err := checkName("token id", t.ID); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	if err := checkName("token name", t.Name); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	if len(t.SecretHash) == 0 {
		return fmt.Errorf("create token %s: no secret hash: %w", t.ID, store.ErrInvalid)
	}
	rec := tokenRecord(t)
	rec.SecretHash = append([]byte(nil), t.SecretHash...)
	rec.CreatedAt = norm(t.CreatedAt)
	rec.ExpiresAt = t.ExpiresAt.UTC().Round(0)
	if !t.RevokedAt.IsZero() {
		rec.RevokedAt = t.RevokedAt.UTC().Round(0)
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bTokens)
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", bTokens, err)
		}
		if b.Get([]byte(t.ID)) != nil {
			return fmt.Errorf("token id %s already exists: %w", t.ID, store.ErrConflict)
		}
		return put(b, []byte(t.ID), rec)
	})
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// loadToken decodes one token; ErrNotFound naming it when missing (or
// when no token was ever written).
func loadToken(tx *bbolt.Tx, id string) (tokenRecord, error) {
	var r tokenRecord
	if err := checkName("token id", id); err != nil {
		return r, err
	}
	b := tx.Bucket(bTokens)
	if b == nil {
		return r, fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	ok, err := get(b, []byte(id), &r)
	if err != nil {
		return r, fmt.Errorf("token %s: %w", id, err)
	}
	if !ok {
		return r, fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	return r, nil
}

// GetToken returns one CI token.
func (s *Store) GetToken(ctx context.Context, id string) (store.CIToken, error) {
	var r tokenRecord
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		r, err = loadToken(tx, id)
		return err
	})
	if err != nil {
		return store.CIToken{}, fmt.Errorf("get token: %w", err)
	}
	return r.wire(), nil
}

// ListTokens lists every CI token, revoked ones included, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]store.CIToken, error) {
	out := []store.CIToken{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bTokens)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			var r tokenRecord
			if _, err := get(b, k, &r); err != nil {
				return err
			}
			out = append(out, r.wire())
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// RevokeToken marks a token revoked. Revoking twice keeps the first time,
// so a retried revoke does not rewrite when the token stopped working.
func (s *Store) RevokeToken(ctx context.Context, id string, now time.Time) (store.CIToken, error) {
	now = norm(now)
	var r tokenRecord
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		var err error
		if r, err = loadToken(tx, id); err != nil {
			return err
		}
		if !r.RevokedAt.IsZero() {
			return nil
		}
		r.RevokedAt = now
		b, err := tx.CreateBucketIfNotExists(bTokens)
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", bTokens, err)
		}
		return put(b, []byte(id), r)
	})
	if err != nil {
		return store.CIToken{}, fmt.Errorf("revoke token: %w", err)
	}
	return r.wire(), nil
}
