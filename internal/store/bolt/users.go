package bolt

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store"
)

func usersBucket(tx *bbolt.Tx) (*bbolt.Bucket, error) {
	b := tx.Bucket(bUsers)
	if b == nil {
		return nil, fmt.Errorf("bucket %s missing: the file is damaged", bUsers)
	}
	return b, nil
}

// loadUser decodes one user; ErrNotFound naming it when missing.
func loadUser(b *bbolt.Bucket, name string) (userRecord, error) {
	var u userRecord
	if err := checkName("user name", name); err != nil {
		return u, err
	}
	ok, err := get(b, []byte(name), &u)
	if err != nil {
		return u, fmt.Errorf("user %q: %w", name, err)
	}
	if !ok {
		return u, fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	return u, nil
}

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
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := usersBucket(tx)
		if err != nil {
			return err
		}
		if b.Get([]byte(u.Name)) != nil {
			return fmt.Errorf("user %q already exists: %w", u.Name, store.ErrConflict)
		}
		return put(b, []byte(u.Name), userRecord(u))
	})
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

// GetUser returns one account.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	var u userRecord
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b, err := usersBucket(tx)
		if err != nil {
			return err
		}
		u, err = loadUser(b, name)
		return err
	})
	if err != nil {
		return store.User{}, fmt.Errorf("get user: %w", err)
	}
	return u.wire(), nil
}

// ListUsers lists every account by name.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	out := []store.User{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b, err := usersBucket(tx)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, _ []byte) error {
			u, err := loadUser(b, string(k))
			if err != nil {
				return err
			}
			out = append(out, u.wire())
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// SetPassword stores a new hash and bumps TokenGeneration, so every token
// issued before stops working.
func (s *Store) SetPassword(ctx context.Context, name string, hash []byte, now time.Time) (store.User, error) {
	now = norm(now)
	var u userRecord
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := usersBucket(tx)
		if err != nil {
			return err
		}
		if u, err = loadUser(b, name); err != nil {
			return err
		}
		u.PasswordHash = append([]byte(nil), hash...)
		u.TokenGeneration++
		u.UpdatedAt = now
		return put(b, []byte(name), u)
	})
	if err != nil {
		return store.User{}, fmt.Errorf("set password: %w", err)
	}
	return u.wire(), nil
}

// DeleteUser removes an account.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := usersBucket(tx)
		if err != nil {
			return err
		}
		if _, err := loadUser(b, name); err != nil {
			return err
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	return nil
}
