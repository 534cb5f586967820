package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/otaship/ota/internal/store"
)

// CreateUser adds an account; ErrConflict when the name is taken. Without
// an id it gets a random one.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := checkName("user name", u.Name); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	if u.ID == "" {
		u.ID = store.NewUserID()
	}
	if err := checkName("user id", u.ID); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	u.CreatedAt = norm(u.CreatedAt)
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	u.UpdatedAt = norm(u.UpdatedAt)
	raw, err := encode("user", u)
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	err = s.write(ctx, func(t *txn) error {
		tag, err := t.Exec(ctx, "INSERT INTO users (name, record) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", u.Name, raw)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("user %q already exists: %w", u.Name, store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

// loadUser decodes one user, locking it for a write when forUpdate;
// ErrNotFound naming it when missing.
func loadUser(ctx context.Context, db querier, name string, forUpdate bool) (store.User, error) {
	var u store.User
	if err := checkName("user name", name); err != nil {
		return u, err
	}
	sql := "SELECT record FROM users WHERE name = $1"
	if forUpdate {
		sql += " FOR UPDATE"
	}
	var raw []byte
	err := db.QueryRow(ctx, sql, name).Scan(&raw)
	if noRows(err) {
		return u, fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("read user %q: %w", name, err)
	}
	if err := decode("user "+name, raw, &u); err != nil {
		return u, err
	}
	u.Name = name
	return u, nil
}

// GetUser returns one account.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	if err := ctx.Err(); err != nil {
		return store.User{}, err
	}
	u, err := loadUser(ctx, s.db(), name, false)
	if err != nil {
		return store.User{}, fmt.Errorf("get user: %w", dbErr(ctx, err))
	}
	return u, nil
}

// ListUsers lists every account by name.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	out := []store.User{}
	err := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := s.db().Query(ctx, "SELECT name, record FROM users ORDER BY name")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				name string
				raw  []byte
				u    store.User
			)
			if err := rows.Scan(&name, &raw); err != nil {
				return err
			}
			if err := decode("user "+name, raw, &u); err != nil {
				return err
			}
			u.Name = name
			out = append(out, u)
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, fmt.Errorf("list users: %w", dbErr(ctx, err))
	}
	return out, nil
}

// SetPassword stores a new hash and bumps TokenGeneration, so every token
// issued before stops working. The row is locked, so two replicas changing
// one password both bump the generation.
func (s *Store) SetPassword(ctx context.Context, name string, hash []byte, now time.Time) (store.User, error) {
	now = norm(now)
	var u store.User
	err := s.write(ctx, func(t *txn) error {
		var err error
		if u, err = loadUser(ctx, t, name, true); err != nil {
			return err
		}
		u.PasswordHash = append([]byte(nil), hash...)
		u.TokenGeneration++
		u.UpdatedAt = now
		raw, err := encode("user", u)
		if err != nil {
			return err
		}
		_, err = t.Exec(ctx, "UPDATE users SET record = $2 WHERE name = $1", name, raw)
		return err
	})
	if err != nil {
		return store.User{}, fmt.Errorf("set password: %w", err)
	}
	return u, nil
}

// DeleteUser removes an account.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	err := s.write(ctx, func(t *txn) error {
		if err := checkName("user name", name); err != nil {
			return err
		}
		tag, err := t.Exec(ctx, "DELETE FROM users WHERE name = $1", name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("user %q: %w", name, store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	return nil
}
