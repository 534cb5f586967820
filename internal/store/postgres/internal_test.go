package postgres

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/otaship/ota/internal/testengine"
)

// TestWriteRetriesDeadlock: two transactions that lock the same two
// things in opposite orders deadlock; PostgreSQL aborts one, and write
// runs it again, so both succeed.
func TestWriteRetriesDeadlock(t *testing.T) {
	s, err := Open(t.Context(), testengine.Postgres(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var (
		attempts atomic.Int32
		first    sync.WaitGroup // both hold their first lock
		wg       sync.WaitGroup
	)
	first.Add(2)
	lockBoth := func(a, b int64) error {
		once := sync.OnceFunc(first.Done)
		return s.write(t.Context(), func(tx *txn) error {
			n := attempts.Add(1)
			if _, err := tx.Exec(t.Context(), "SELECT pg_advisory_xact_lock($1)", a); err != nil {
				return err
			}
			if n <= 2 {
				once()
				first.Wait()
			}
			_, err := tx.Exec(t.Context(), "SELECT pg_advisory_xact_lock($1)", b)
			return err
		})
	}
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = lockBoth(1, 2) })
	wg.Go(func() { errs[1] = lockBoth(2, 1) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("%d attempts; want 3 (one writer run again after the deadlock)", n)
	}
}
