package server

import (
	"context"

	"github.com/otaship/ota/internal/capawesome"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// The device endpoints of @capawesome/capacitor-live-update live in
// internal/capawesome; this is what they need of the server: the same
// release state, failure memory, rate limits and check bookkeeping as
// /updates, and the files of delta releases (capawesome_manifests.go).

func (s *Server) capawesomeOptions(dl *deviceLimits) capawesome.Options {
	return capawesome.Options{
		Backend:      capawesomeBackend{s},
		PublicURL:    s.cfg.PublicURL,
		CheckLimit:   s.limitDevices(dl.updates),
		ChannelLimit: s.limitDevices(dl.channel),
		Manifests:    &capawesomeManifests{s: s},
	}
}

type capawesomeBackend struct{ s *Server }

func (b capawesomeBackend) Snapshot(ctx context.Context, appID string) (*update.Snapshot, error) {
	return b.s.snapFor(ctx, appID)
}

func (b capawesomeBackend) Failures() update.FailureMemory { return b.s.health }

func (b capawesomeBackend) Checked(snap *update.Snapshot, req *ota.UpdateRequest, d *update.Decision) {
	b.s.observeCheck(snap, req, d)
}

func (b capawesomeBackend) OfferURL(d *update.Decision) string { return b.s.offerURL(d) }
