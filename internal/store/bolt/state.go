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
		// Size the bundle list first: growing a slice of a million
		// bundles step by step costs more than decoding them. Stats
		// reads page headers only.
		n := 0
		err = apps.ForEachBucket(func(k []byte) error {
			if web := apps.Bucket(k).Bucket([]byte(ota.KindWeb)); web != nil {
				n += web.Stats().KeyN
			}
			return nil
		})
		if err != nil {
			return err
		}
		st.Bundles = make([]ota.Bundle, 0, n)
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
		Manifests: []store.Manifest{},
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
	if err := a.addStateBundles(st); err != nil {
		return err
	}
	if err := a.addStateManifests(st, chans); err != nil {
		return err
	}
	ovs, err := a.overrides()
	if err != nil {
		return err
	}
	st.Overrides = append(st.Overrides, ovs...)
	return nil
}

// stateBundle is the part of a bundle record the device endpoints use.
// Decoding only these fields (no times, no notes, no native fingerprint)
// is what keeps start-up with a million bundles short: the rest of each
// record is skipped by the decoder, not built.
type stateBundle struct {
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	MinNative string `json:"min_native"`
	MaxNative string `json:"max_native"`
	// Encryption is a pointer, as in ota.Bundle: most bundles have none.
	Encryption *encryptionRecord `json:"encryption"`
	Signature  string            `json:"signature"`
	Files      int               `json:"files"`
	Deleted    bool              `json:"deleted"`
}

// addStateBundles appends the app's non-deleted web bundles to st with
// their device-facing fields only (see store.State).
func (a *appTx) addStateBundles(st *store.State) error {
	b, err := a.sub([]byte(ota.KindWeb))
	if err != nil {
		return err
	}
	appID := a.id()
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			continue // a nested bucket; bundles are plain values
		}
		var r stateBundle
		if err := decodeStateBundle(v, &r); err != nil {
			return fmt.Errorf("%s bundle %q of app %q: decode: %w", ota.KindWeb, k, appID, err)
		}
		if r.Deleted {
			continue
		}
		st.Bundles = append(st.Bundles, ota.Bundle{
			AppID: appID, Version: r.Version, Kind: r.Kind, SHA256: r.SHA256, Size: r.Size,
			MinNative: r.MinNative, MaxNative: r.MaxNative, Encryption: (*ota.BundleEncryption)(r.Encryption),
			Signature: r.Signature, Files: r.Files,
		})
	}
	return nil
}

// ReferencedBlobs returns the SHA-256 of every bundle not marked deleted,
// of every app and kind, the file forms their manifests name and the
// blobs of every delta file record. Blobs outside it may be collected.
func (s *Store) ReferencedBlobs(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		apps, err := appsBucket(tx)
		if err != nil {
			return err
		}
		err = apps.ForEachBucket(func(k []byte) error {
			a, err := loadApp(tx, string(k))
			if err != nil {
				return err
			}
			for _, kind := range []string{ota.KindWeb, ota.KindAPK} {
				b, err := a.sub([]byte(kind))
				if err != nil {
					return err
				}
				// The lean decoder, as in LoadState: otad runs this at
				// every start, over every bundle.
				err = b.ForEach(func(k, v []byte) error {
					if v == nil {
						return nil
					}
					var r stateBundle
					if err := decodeStateBundle(v, &r); err != nil {
						return fmt.Errorf("%s bundle %q of app %q: decode: %w", kind, k, a.id(), err)
					}
					if !r.Deleted {
						out[r.SHA256] = true
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			return a.namedBlobs(out)
		})
		if err != nil {
			return err
		}
		return addDeltaFileBlobs(tx, out)
	})
	if err != nil {
		return nil, fmt.Errorf("list referenced blobs: %w", err)
	}
	return out, nil
}
