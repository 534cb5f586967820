package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/blob/blobtest"
	"github.com/otaship/ota/internal/blob/s3"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/testengine"
	"github.com/otaship/ota/pkg/ota"
)

// replicas opens two handles on one blob store, as two otad replicas
// sharing it would have: two s3.Stores on one bucket, or (for the local
// directory, which one otad owns) the same FS twice.
type replicasFunc func(t *testing.T) (a, b blob.Store)

func gcBackends() map[string]replicasFunc {
	return map[string]replicasFunc{
		"fs": func(t *testing.T) (blob.Store, blob.Store) {
			fs, err := blob.NewFS(filepath.Join(t.TempDir(), "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			return fs, fs
		},
		"s3": func(t *testing.T) (blob.Store, blob.Store) {
			target := testengine.S3(t)
			open := func() blob.Store {
				st, err := s3.Open(t.Context(), s3.Config{
					Bucket: target.Bucket, Prefix: "otad", Endpoint: target.Endpoint, Region: target.Region, PathStyle: true,
					Credentials: s3.Credentials{AccessKeyID: target.AccessKey, SecretAccessKey: s3.Secret(target.SecretKey)},
				})
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			return open(), open()
		},
	}
}

// gcGrace stands for blobGrace in these tests: long enough to be clear of
// S3's whole-second times, short enough to wait out.
const (
	gcGrace = 1500 * time.Millisecond
	gcAge   = 2500 * time.Millisecond
)

// afterList is a blob store whose List runs hook once the listing is
// done: what another replica does between a collection's listing and its
// deletes.
type afterList struct {
	blob.Store
	hook func()
}

func (a afterList) List(ctx context.Context, fn func(blob.Info) error) error {
	err := a.Store.List(ctx, fn)
	if a.hook != nil {
		a.hook()
	}
	return err
}

// TestCollectBlobsGrace runs a collection on replica 2 while replica 1
// uploads, on both backends: a referenced blob stays; an old unreferenced
// one goes; one put just now and not referenced yet stays; an old one
// that replica 1 uploads again (its bytes are about to be referenced
// again), before the listing or between the listing and the deletes,
// stays.
func TestCollectBlobsGrace(t *testing.T) {
	for name, open := range gcBackends() {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			st, err := openStore(t.TempDir(), true)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			r1, r2 := open(t)
			put := func(b []byte) blob.Info {
				t.Helper()
				info, err := r1.Put(ctx, bytes.NewReader(b), 0)
				if err != nil {
					t.Fatal(err)
				}
				return info
			}
			referenced := put(blobtest.Data(1, 1000))
			oldGarbage := put(blobtest.Data(2, 1000))
			reuploaded := put(blobtest.Data(3, 1000))
			reuploadedLate := put(blobtest.Data(4, 1000))
			if _, err := st.Publish(ctx, store.PublishInput{
				Bundle:  ota.Bundle{AppID: "com.example.app", Version: "1.0.0", Kind: ota.KindWeb, SHA256: referenced.SHA256, Size: referenced.Size},
				Channel: "stable", Actor: "test", Time: time.Now(),
			}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(gcAge) // everything so far is past the grace period
			young := put(blobtest.Data(5, 1000))
			put(blobtest.Data(3, 1000)) // replica 1 uploads these bytes again

			var logs bytes.Buffer
			collector := afterList{Store: r2, hook: func() {
				// Replica 1 uploads these bytes again after replica 2 listed
				// them as old.
				if _, err := r1.Put(ctx, bytes.NewReader(blobtest.Data(4, 1000)), 0); err != nil {
					t.Error(err)
				}
			}}
			collectBlobs(ctx, st, collector, time.Now(), gcGrace, slog.New(slog.NewTextHandler(&logs, nil)))

			for _, tt := range []struct {
				name string
				info blob.Info
				kept bool
			}{
				{"referenced", referenced, true},
				{"old unreferenced", oldGarbage, false},
				{"put just now, not referenced yet", young, true},
				{"old, uploaded again before the collection", reuploaded, true},
				{"old, uploaded again during the collection", reuploadedLate, true},
			} {
				_, err := r2.Stat(ctx, tt.info.SHA256)
				if kept := err == nil; kept != tt.kept {
					t.Errorf("%s blob: kept = %v (stat err %v), want %v", tt.name, kept, err, tt.kept)
				}
				if err != nil && !errors.Is(err, blob.ErrNotFound) {
					t.Errorf("%s blob: %v", tt.name, err)
				}
			}

			// Once past the grace period too, the unreferenced ones go.
			time.Sleep(gcAge)
			collectBlobs(ctx, st, r2, time.Now(), gcGrace, slog.New(slog.NewTextHandler(io.Discard, nil)))
			var left []string
			if err := r2.List(ctx, func(i blob.Info) error { left = append(left, i.SHA256); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(left) != 1 || left[0] != referenced.SHA256 {
				t.Errorf("after a later collection %v are left, want only the referenced blob", left)
			}
		})
	}
}
