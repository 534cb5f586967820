package postgres_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/store/bolt/bolttest"
	"github.com/otaship/ota/internal/store/postgres"
	"github.com/otaship/ota/internal/store/storecopy"
	"github.com/otaship/ota/internal/store/storetest"
	"github.com/otaship/ota/pkg/ota"
)

func importFrom(t *testing.T, src store.Store, dst *postgres.Store) (storecopy.Counts, error) {
	t.Helper()
	im, err := dst.Import(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer im.Rollback(t.Context())
	return storecopy.Copy(t.Context(), src, im, nil)
}

// TestImport: an embedded store copied into the database reads back the
// same, record for record, and the copy goes on numbering the history.
// Copying it again changes nothing; copying after the source moved on
// adds what is new.
func TestImport(t *testing.T) {
	src := bolttest.New(t, bolt.Options{})
	storetest.Fill(t, src, epoch)
	dst := open(t, postgres.Options{})
	c, err := importFrom(t, src, dst)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if c.Apps != 1 || c.Events == 0 || c.Stats != 5 || c.Deliveries != 3 || c.Tokens != 1 || c.Health != 1 || c.Overrides != 2 || c.Offers != 2 {
		t.Errorf("counts %+v; want some of everything", c)
	}
	want := storetest.ReadAll(t, src)
	if got := storetest.ReadAll(t, dst); got != want {
		t.Fatalf("the database holds other records than the source:\n%s\nwant\n%s", got, want)
	}
	if have, err := dst.Counts(t.Context()); err != nil || len(have.Diff(c)) > 0 {
		t.Errorf("database counts %+v, %v; want %+v", have, err, c)
	}

	// Again: nothing changes.
	if _, err := importFrom(t, src, dst); err != nil {
		t.Fatalf("second import: %v", err)
	}
	if got := storetest.ReadAll(t, dst); got != want {
		t.Errorf("a second import changed the database:\n%s", got)
	}

	// The source moves on: the new records come over, the old stay once.
	mustPublish(t, src, "fill", "stable", "5.0.0")
	if err := src.AppendStats(t.Context(), []store.StoredStat{{Received: epoch.Add(time.Hour), Event: ota.StatsEvent{
		DeviceInfo: ota.DeviceInfo{AppID: "fill", DeviceID: "late"}, Action: "set"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := importFrom(t, src, dst); err != nil {
		t.Fatalf("import after the source moved on: %v", err)
	}
	if got, want := storetest.ReadAll(t, dst), storetest.ReadAll(t, src); got != want {
		t.Errorf("after the catch-up the database differs from the source:\n%s\nwant\n%s", got, want)
	}

	// The copy numbers new events after the copied ones, and channel ids
	// after the copied channels.
	mustPublish(t, dst, "fill", "beta", "9.0.0")
	evs, _, err := dst.History(t.Context(), store.HistoryQuery{Limit: 1})
	if err != nil || len(evs) != 1 || evs[0].Seq != c.LastSeq+2 {
		t.Errorf("newest event after the import = %+v, %v; want seq %d", evs, err, c.LastSeq+2)
	}
	chans, err := dst.ListChannels(t.Context(), "fill")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int64]string{}
	for _, ch := range chans {
		if other, dup := ids[ch.ID]; dup {
			t.Errorf("channels %s and %s share id %d", other, ch.Name, ch.ID)
		}
		ids[ch.ID] = ch.Name
	}
}

// TestImportRefusesAnotherHistory: a database written to since (events
// the source lacks, or other events under the same numbers) is left as it
// was.
func TestImportRefusesAnotherHistory(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, src store.Store, dst *postgres.Store)
	}{
		{"events beyond the source's", func(t *testing.T, src store.Store, dst *postgres.Store) {
			if _, err := importFrom(t, src, dst); err != nil {
				t.Fatal(err)
			}
			mustPublish(t, dst, "fill", "stable", "3.0.0")
		}},
		{"another history", func(t *testing.T, src store.Store, dst *postgres.Store) {
			for i := range 3 {
				mustPublish(t, dst, "other", "stable", fmt.Sprintf("1.0.%d", i))
			}
		}},
		{"a token the source lacks", func(t *testing.T, src store.Store, dst *postgres.Store) {
			if _, err := importFrom(t, src, dst); err != nil {
				t.Fatal(err)
			}
			if err := dst.CreateToken(t.Context(), store.CIToken{ID: "new", Name: "x", SecretHash: []byte{1}, CreatedAt: epoch}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := bolttest.New(t, bolt.Options{})
			storetest.Fill(t, src, epoch)
			dst := open(t, postgres.Options{})
			tt.setup(t, src, dst)
			before := storetest.ReadAll(t, dst)
			_, err := importFrom(t, src, dst)
			if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("import: %v; want ErrConflict", err)
			}
			t.Log(err)
			if after := storetest.ReadAll(t, dst); after != before {
				t.Errorf("the refused import changed the database")
			}
		})
	}
}
