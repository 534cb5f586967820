package bolt

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// LoadState reads what the device endpoints need for every app. It reads
// apps, channels, web bundles and overrides only, never the history or the
// stats, so its cost does not grow with either.
func (s *Store) LoadState(ctx context.Context) (store.State, error) {
	st := emptyState()
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		apps, err := appsBucket(tx)
		if err != nil {
			return err
		}
		return apps.ForEachBucket(func(k []byte) error {
			a, err := loadApp(tx, string(k))
			if err != nil {
				return err
			}
			return a.addState(&st)
		})
	})
	if err != nil {
		return store.State{}, fmt.Errorf("load state: %w", err)
	}
	return st, nil
}

// LoadAppState reads the device-facing state of one app; ErrNotFound when
// the app does not exist.
func (s *Store) LoadAppState(ctx context.Context, appID string) (store.State, error) {
	st := emptyState()
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		a, err := loadApp(tx, appID)
		if err != nil {
			return err
		}
		return a.addState(&st)
	})
	if err != nil {
		return store.State{}, fmt.Errorf("load state of %s: %w", appID, err)
	}
	return st, nil
}

func emptyState() store.State {
	return store.State{
		Apps:      []ota.App{},
		Channels:  []ota.Channel{},
		Bundles:   []ota.Bundle{},
		Overrides: []store.DeviceOverride{},
	}
}

// addState appends the app's device-facing records to st.
func (a *appTx) addState(st *store.State) error {
	st.Apps = append(st.Apps, a.rec.wire())
	chans, err := a.channels()
	if err != nil {
		return err
	}
	for _, c := range chans {
		w, err := a.wireChannel(c)
		if err != nil {
			return err
		}
		st.Channels = append(st.Channels, w)
	}
	bundles, err := a.bundles(ota.KindWeb)
	if err != nil {
		return err
	}
	for _, b := range bundles {
		if !b.Deleted {
			st.Bundles = append(st.Bundles, b.wire(a.id()))
		}
	}
	ovs, err := a.overrides()
	if err != nil {
		return err
	}
	st.Overrides = append(st.Overrides, ovs...)
	return nil
}

// ReferencedBlobs returns the SHA-256 of every bundle not marked deleted,
// of every app and kind. Blobs outside it may be collected.
func (s *Store) ReferencedBlobs(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		apps, err := appsBucket(tx)
		if err != nil {
			return err
		}
		return apps.ForEachBucket(func(k []byte) error {
			a, err := loadApp(tx, string(k))
			if err != nil {
				return err
			}
			for _, kind := range []string{ota.KindWeb, ota.KindAPK} {
				recs, err := a.bundles(kind)
				if err != nil {
					return err
				}
				for _, r := range recs {
					if !r.Deleted {
						out[r.SHA256] = true
					}
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list referenced blobs: %w", err)
	}
	return out, nil
}
