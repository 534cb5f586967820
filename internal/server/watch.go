package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otaship/ota/internal/offers"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// Silent-failure detection and adoption: what every update check and
// report tells the offer memory (internal/offers), and what a stalled
// install does to the version's health.

// watchState is the server's share of it: the queue of versions whose
// halt policy a newly stalled install may have crossed, worked off away
// from the device's request.
type watchState struct {
	once  sync.Once
	halts chan healthKey
	stop  chan struct{}
	done  chan struct{}
	// off turns the bookkeeping off (benchmarks compare with it).
	off bool
	// adoptionSaved is when adoption was last saved (Unix seconds).
	adoptionSaved atomic.Int64
	// ramps runs the ramp schedules (ramps.go).
	ramps *rampRunner
}

// watchCheck records an answered update check in the offer memory: the
// version the device runs (adoption), what it was offered, and whether it
// is now a stalled install. It does not allocate for a known device.
func (s *Server) watchCheck(snap *update.Snapshot, req *ota.UpdateRequest, d *update.Decision) {
	if s.watch.off || req.DeviceID == "" {
		return
	}
	av := snap.App(d.AppID)
	if av == nil {
		return // devices choose app ids: only apps otad has are remembered
	}
	c := offers.Check{App: av.App.ID, Device: req.DeviceID, Source: d.Source, Running: av.Running(req),
		Build: req.VersionBuild, Plugin: req.PluginVersion, Platform: req.Platform, Prod: req.Prod(), Emulator: req.Emulator(),
		Now: s.cfg.Now()}
	if cv := av.Channels[d.Channel]; cv != nil {
		c.Channel = cv.Channel.Name
		p := &cv.Channel.Policy
		c.StalledAfter, c.StalledPolls = p.StalledWindow(), p.StalledChecks()
	}
	// A bundle offered (not a refusal, not builtin) is remembered, so
	// this device's later reports about it count (offers.go).
	if d.Bundle != nil {
		c.Offered = d.Response.Version
	}
	res := s.offers.Check(&c)
	switch {
	case res.Stalled != "":
		if s.health.markStalled(c.App, res.Stalled, req.DeviceID, c.Now) {
			s.scheduleHealthFlush()
			s.queueHaltCheck(healthKey{c.App, res.Stalled})
		}
	case res.Ran != "":
		if s.health.unstall(c.App, res.Ran, req.DeviceID, c.Now) {
			s.scheduleHealthFlush()
		}
	}
}

// downloadActions say the device has the offered version's bytes.
var downloadActions = map[string]bool{
	"download_complete": true, "download_zip_complete": true, "download_manifest_complete": true, "set_next": true,
}

// watchReports tells the offer memory what devices reported about the
// versions they were offered: downloading, installing or failing them
// ends their candidacy as stalled installs.
func (s *Server) watchReports(events []ota.StatsEvent, unverified []bool) {
	if s.watch.off {
		return
	}
	for i := range events {
		ev := &events[i]
		if unverified != nil && unverified[i] {
			continue
		}
		kind := -1
		switch {
		case successActions[ev.Action]:
			kind = offers.ReportInstalled
		case downloadActions[ev.Action]:
			kind = offers.ReportDownloaded
		case loopActions[ev.Action] || failureActions[ev.Action]:
			kind = offers.ReportFailed
		}
		if kind >= 0 {
			s.offers.Report(ev.AppID, ev.DeviceID, update.EventVersion(ev.VersionName), kind)
		}
	}
}

// queueHaltCheck asks the halt worker to apply the halt policy to a
// version; a full queue drops the ask (the next stall, stats batch or
// ramp tick asks again).
func (s *Server) queueHaltCheck(k healthKey) {
	w := &s.watch
	w.once.Do(func() {
		w.halts, w.stop, w.done = make(chan healthKey, 256), make(chan struct{}), make(chan struct{})
		go s.haltWorker()
	})
	select {
	case w.halts <- k:
	default:
	}
}

func (s *Server) haltWorker() {
	w := &s.watch
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		case k := <-w.halts:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := s.checkHalt(ctx, s.snap.Load(), k); err != nil {
				s.log.Error("halt check after a stalled install", "app", k.app, "version", k.version, "err", err)
			}
			cancel()
		}
	}
}

// closeWatch stops the ramp schedule and the halt worker.
func (s *Server) closeWatch() {
	s.stopRamps()
	w := &s.watch
	w.once.Do(func() {}) // no worker from now on
	if w.stop != nil {
		close(w.stop)
		<-w.done
	}
}

// flushAdoption saves the adoption days that changed (closed days and
// today's counts so far), at most every adoptionSaveEvery.
func (s *Server) flushAdoption(ctx context.Context, force bool) error {
	now := s.cfg.Now()
	a := s.offers.Adoption()
	a.Roll(now)
	if !force && now.Sub(time.Unix(s.watch.adoptionSaved.Load(), 0)) < adoptionSaveEvery {
		return nil
	}
	days := a.TakeDirty()
	if len(days) == 0 {
		return nil
	}
	if err := s.store.SaveAdoption(ctx, days, a.KeepFrom(now)); err != nil {
		a.Requeue(days)
		return err
	}
	s.watch.adoptionSaved.Store(now.Unix())
	return nil
}

// adoptionSaveEvery bounds how often today's adoption counts are saved;
// a restart rebuilds them from the offer memory anyway.
const adoptionSaveEvery = time.Minute
