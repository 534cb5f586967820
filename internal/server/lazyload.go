package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// otad starts with every app Unloaded (see update.Snapshot) and builds an
// app's view the first time something needs it, or when WarmUp reaches it.
// Reading a million bundle records before listening took seconds; one
// app's records take milliseconds.

// appLoadTimeout bounds one app's load. It is not the request's deadline:
// every request waiting for the app shares the load.
const appLoadTimeout = 30 * time.Second

// appLoad is one app being loaded; requests that need the same app wait
// for it instead of reading the store again.
type appLoad struct {
	done chan struct{}
	err  error
}

// snapFor returns the current snapshot, first loading appID when it is
// Unloaded. Once an app is loaded this is one atomic load and a map
// lookup on an empty map, so the device endpoints read no disk.
func (s *Server) snapFor(ctx context.Context, appID string) (*update.Snapshot, error) {
	snap := s.snap.Load()
	if !snap.IsUnloaded(appID) {
		return snap, nil
	}
	if err := s.loadApp(ctx, appID); err != nil {
		return nil, err
	}
	return s.snap.Load(), nil
}

// snapForEvents is snapFor for every app a stats batch names.
func (s *Server) snapForEvents(ctx context.Context, events []ota.StatsEvent) (*update.Snapshot, error) {
	snap := s.snap.Load()
	for i := range events {
		id := events[i].AppID
		if !snap.IsUnloaded(id) {
			continue
		}
		var err error
		if snap, err = s.snapFor(ctx, id); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// loadApp builds appID's view unless a load of it is already running, in
// which case it waits for that one (or for ctx).
func (s *Server) loadApp(ctx context.Context, appID string) error {
	s.loadMu.Lock()
	if l := s.loading[appID]; l != nil {
		s.loadMu.Unlock()
		select {
		case <-l.done:
			return l.err
		case <-ctx.Done():
			return fmt.Errorf("wait for the state of app %s: %w", appID, ctx.Err())
		}
	}
	l := &appLoad{done: make(chan struct{})}
	if s.loading == nil {
		s.loading = map[string]*appLoad{}
	}
	s.loading[appID] = l
	s.loadMu.Unlock()

	l.err = s.readApp(appID)

	s.loadMu.Lock()
	delete(s.loading, appID)
	s.loadMu.Unlock()
	close(l.done)
	return l.err
}

// readApp reads appID's state and swaps its view in. The read runs outside
// writeMu, so loads of different apps overlap with each other and with
// writes; the swap happens only if the app is still Unloaded, because a
// refreshApp that got there first read a state at least as new.
func (s *Server) readApp(appID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), appLoadTimeout)
	defer cancel()
	st, err := s.store.LoadAppState(ctx, appID)
	if errors.Is(err, store.ErrNotFound) {
		st, err = store.State{}, nil // removed since start: WithApp drops it
	}
	if err != nil {
		return fmt.Errorf("load the state of app %s: %w", appID, err)
	}
	if s.testHookAppRead != nil {
		s.testHookAppRead(appID)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if snap := s.snap.Load(); snap.IsUnloaded(appID) {
		s.snap.Store(snap.WithApp(appID, st, s.bundleLink, s.snapshotOptions()...))
	}
	return nil
}

// WarmUp loads every app still Unloaded, one at a time, so that soon
// after start no request waits for the store. otad runs it in the
// background once it listens; it returns when every app is loaded or ctx
// ends. An app that fails to load is logged and left to load on its
// first request.
func (s *Server) WarmUp(ctx context.Context) {
	start := time.Now()
	ids := make([]string, 0, len(s.snap.Load().Unloaded))
	for id := range s.snap.Load().Unloaded {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	failed := 0
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		if !s.snap.Load().IsUnloaded(id) {
			continue // a request or a write got there first
		}
		if err := s.loadApp(ctx, id); err != nil {
			failed++
			s.log.Error("load release state; it loads on the app's next request", "app", id, "err", err)
		}
	}
	s.log.Info("release state loaded", "apps", len(ids), "failed", failed,
		"took", time.Since(start).Round(time.Millisecond).String())
}
