package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/otaship/ota/internal/store"
)

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
	rec := t
	rec.SecretHash = append([]byte(nil), t.SecretHash...)
	rec.CreatedAt = norm(t.CreatedAt)
	rec.ExpiresAt = t.ExpiresAt.UTC().Round(0)
	if !t.RevokedAt.IsZero() {
		rec.RevokedAt = t.RevokedAt.UTC().Round(0)
	}
	raw, err := encode("token", rec)
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	err = s.write(ctx, func(tx *txn) error {
		tag, err := tx.Exec(ctx, "INSERT INTO ci_tokens (id, record) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", t.ID, raw)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("token id %s already exists: %w", t.ID, store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

func loadToken(ctx context.Context, db querier, id string, forUpdate bool) (store.CIToken, error) {
	var t store.CIToken
	if err := checkName("token id", id); err != nil {
		return t, err
	}
	sql := "SELECT record FROM ci_tokens WHERE id = $1"
	if forUpdate {
		sql += " FOR UPDATE"
	}
	var raw []byte
	err := db.QueryRow(ctx, sql, id).Scan(&raw)
	if noRows(err) {
		return t, fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("read token %s: %w", id, err)
	}
	if err := decode("token "+id, raw, &t); err != nil {
		return t, err
	}
	t.ID = id
	return t, nil
}

// GetToken returns one CI token.
func (s *Store) GetToken(ctx context.Context, id string) (store.CIToken, error) {
	if err := ctx.Err(); err != nil {
		return store.CIToken{}, err
	}
	t, err := loadToken(ctx, s.db(), id, false)
	if err != nil {
		return store.CIToken{}, fmt.Errorf("get token: %w", dbErr(ctx, err))
	}
	return t, nil
}

// ListTokens lists every CI token, revoked ones included, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]store.CIToken, error) {
	out := []store.CIToken{}
	err := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := s.db().Query(ctx, "SELECT id, record FROM ci_tokens ORDER BY id")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id  string
				raw []byte
				t   store.CIToken
			)
			if err := rows.Scan(&id, &raw); err != nil {
				return err
			}
			if err := decode("token "+id, raw, &t); err != nil {
				return err
			}
			t.ID = id
			out = append(out, t)
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", dbErr(ctx, err))
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
	var t store.CIToken
	err := s.write(ctx, func(tx *txn) error {
		var err error
		if t, err = loadToken(ctx, tx, id, true); err != nil {
			return err
		}
		if !t.RevokedAt.IsZero() {
			return nil
		}
		t.RevokedAt = now
		raw, err := encode("token", t)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE ci_tokens SET record = $2 WHERE id = $1", id, raw)
		return err
	})
	if err != nil {
		return store.CIToken{}, fmt.Errorf("revoke token: %w", err)
	}
	return t, nil
}
