package postgres

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

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

// TestMigrationHostileDevices: a database of schema 2 gets user ids, pins
// a legacy plugin set itself become the device's, and stats a byte count.
func TestMigrationHostileDevices(t *testing.T) {
	ctx := t.Context()
	url := testengine.Postgres(t)
	cfg, err := parseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := &Store{pool: pool}
	if err := old.migrate(ctx, migrations[:2]); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`INSERT INTO users (name, record) VALUES ('alice', '{"name":"alice","token_generation":3}'), ('bob', '{"name":"bob"}')`,
		`INSERT INTO apps (id, record) VALUES ('a', '{"id":"a"}')`,
		`INSERT INTO overrides (app_id, device_id, channel) VALUES ('a', 'self', 'beta'), ('a', 'admin', 'beta'), ('a', 'both', 'beta')`,
		`INSERT INTO events (seq, app_id, channel, record) VALUES
			(1, 'a', 'beta', '{"seq":1,"type":"device_override","actor":"device:self","app_id":"a","note":"device self"}'),
			(2, 'a', 'beta', '{"seq":2,"type":"device_override","actor":"alice","app_id":"a","note":"device admin"}'),
			(3, 'a', 'beta', '{"seq":3,"type":"device_override","actor":"device:both","app_id":"a","note":"device both"}'),
			(4, 'a', 'beta', '{"seq":4,"type":"device_override","actor":"alice","app_id":"a","note":"device both"}')`,
		`INSERT INTO stats (app_id, received, event) VALUES ('a', now(), '{"action":"set"}'), ('a', now(), '{"action":"reset"}')`,
		`INSERT INTO stats_counts (app_id, n) VALUES ('a', 2)`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	pool.Close()

	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	users, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || len(users[0].ID) != 32 || len(users[1].ID) != 32 || users[0].ID == users[1].ID || users[0].TokenGeneration != 3 {
		t.Errorf("users after the migration = %+v; want distinct 32-digit ids, the rest kept", users)
	}
	st, err := s.LoadAppState(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]bool{}
	for _, o := range st.Overrides {
		owners[o.DeviceID] = o.ByDevice
	}
	if !owners["self"] || owners["admin"] || owners["both"] || len(owners) != 3 {
		t.Errorf("pin owners = %v; want only self's own", owners)
	}
	var bytes int64
	if err := s.pool.QueryRow(ctx, "SELECT bytes FROM stats_counts WHERE app_id = 'a'").Scan(&bytes); err != nil || bytes != int64(len(`{"action":"set"}`)+len(`{"action":"reset"}`)) {
		t.Errorf("stats bytes = %d, %v", bytes, err)
	}
}
