package postgres_test

import (
	"testing"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/postgres"
	"github.com/otaship/ota/internal/store/storetest"
	"github.com/otaship/ota/internal/testengine"
)

// open opens a store on a fresh database, closed when the test ends.
func open(t testing.TB, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), testengine.Postgres(t), opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, postgres.Options{}) })
}
