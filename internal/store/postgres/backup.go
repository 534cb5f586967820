package postgres

import (
	"context"
	"errors"
	"io"
)

// Backup is not written yet.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	return 0, errors.New("todo")
}
