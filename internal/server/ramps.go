package server

import (
	"context"
	"fmt"
	"time"

	"github.com/otaship/ota/internal/ramp"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// rampLeader is the name of the ramp schedule's leadership (store.Lead):
// with several replicas on one database, one takes the steps.
const rampLeader = "ramps"

// defaultRampTick is how often the ramp schedule is looked at.
const defaultRampTick = 30 * time.Second

// rampRunner runs the ramp schedule while this process leads it.
type rampRunner struct {
	lease store.Lease
	stop  chan struct{}
	done  chan struct{}
}

// startWatch loads the stored adoption days and starts the ramp
// schedule's loop (unless Config.RampTick is negative: tests tick it).
func (s *Server) startWatch(ctx context.Context) error {
	a := s.offers.Adoption()
	days, err := s.store.LoadAdoption(ctx, a.KeepFrom(s.cfg.Now()))
	if err != nil {
		return fmt.Errorf("load adoption: %w", err)
	}
	a.Load(days)
	r := &rampRunner{stop: make(chan struct{}), done: make(chan struct{})}
	s.watch.ramps = r
	every := s.cfg.RampTick
	if every == 0 {
		every = defaultRampTick
	}
	if every < 0 {
		close(r.done)
		return nil
	}
	go func() {
		defer close(r.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), every)
			if err := s.tickRamps(ctx); err != nil {
				s.log.Error("ramp schedule", "err", err)
			}
			if err := s.flushAdoption(ctx, false); err != nil {
				s.log.Error("adoption counts not saved; retrying", "err", err)
			}
			cancel()
		}
	}()
	return nil
}

// stopRamps ends the loop and gives leadership up.
func (s *Server) stopRamps() {
	r := s.watch.ramps
	if r == nil {
		return
	}
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
	if r.lease != nil {
		r.lease.Release()
		r.lease = nil
	}
}

// leading reports whether this process leads the ramp schedule, taking
// leadership when nobody holds it. Only tickRamps calls it, one at a time.
func (s *Server) leading(ctx context.Context) (bool, error) {
	r := s.watch.ramps
	if r.lease != nil {
		select {
		case <-r.lease.Lost():
			s.log.Warn("ramp schedule: leadership lost (database connection broke); trying again")
			r.lease = nil
		default:
			return true, nil
		}
	}
	l, ok, err := s.store.Lead(ctx, rampLeader)
	if err != nil || !ok {
		return false, err
	}
	r.lease = l
	s.log.Info("ramp schedule: this process leads it")
	return true, nil
}

// tickRamps looks at every ramp once: the halt policy first (stalled
// installs may have crossed it), then the ramp's own decision, applied
// through the store with a history event (and so a webhook).
func (s *Server) tickRamps(ctx context.Context) error {
	if ok, err := s.leading(ctx); err != nil || !ok {
		return err
	}
	snap := s.snap.Load()
	var errs []error
	for id, av := range snap.Apps {
		for _, cv := range av.List {
			r := cv.Channel.Rollout
			if r == nil || r.Ramp == nil || !r.InEffect(cv.Channel.Active) {
				continue
			}
			if err := s.tickRamp(ctx, id, cv.Channel.Name, r.Target); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d ramps failed, the first: %w", len(errs), errs[0])
	}
	return nil
}

func (s *Server) tickRamp(ctx context.Context, app, channel, target string) error {
	if err := s.checkHalt(ctx, s.snap.Load(), healthKey{app, target}); err != nil {
		return err
	}
	av := s.snap.Load().App(app)
	if av == nil || av.Channels[channel] == nil {
		return nil
	}
	ch := &av.Channels[channel].Channel
	devices, failed, stalled := s.health.counts(app, target)
	d := ramp.Next(ch.Rollout, ch.Active, &ch.Policy, ramp.Health{Devices: devices, Failed: failed, Stalled: stalled}, s.cfg.Now())
	var req ota.RolloutRequest
	switch d.Action {
	case ramp.Step:
		req = ota.RolloutRequest{Action: store.RolloutStep, Percent: d.Percent}
	case ramp.Hold:
		if ch.Rollout.Ramp.Held == d.Reason {
			return nil
		}
		req = ota.RolloutRequest{Action: store.RolloutHold, Reason: d.Reason}
	default:
		return nil
	}
	if _, err := s.store.SetRollout(ctx, app, channel, req, "otad", s.cfg.Now()); err != nil {
		return fmt.Errorf("ramp of %s on %s of %s: %w", target, channel, app, err)
	}
	if err := s.refreshApp(ctx, app); err != nil {
		return err
	}
	if d.Action == ramp.Step {
		s.log.Info("ramp step", "app", app, "channel", channel, "version", target, "percent", d.Percent)
	} else {
		s.log.Warn("ramp holds", "app", app, "channel", channel, "version", target, "reason", d.Reason)
	}
	return nil
}
