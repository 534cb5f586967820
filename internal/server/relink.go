package server

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/update"
)

// Presigned download URLs expire, and the device snapshot prepares every
// answer with its URL. So, when links expire (download.Locator's
// RenewEvery is not 0), relinkLoop builds the snapshot's channel views
// again with fresh links every RenewEvery, from the snapshot's own
// records (no store read). An answer whose link is past its Renew time
// anyway (the loop is late: a write holds writeMu for long) is not sent
// as prepared: handleUpdates asks for a fresh link (answerFresh) and wakes
// the loop. Devices therefore never get a URL with less than half its
// lifetime left.

// startRelink starts relinkLoop when links expire.
func (s *Server) startRelink() {
	every := s.links.RenewEvery()
	if every <= 0 {
		return
	}
	s.relinkNow = make(chan struct{}, 1)
	s.stopRelink = make(chan struct{})
	s.relinkDone = make(chan struct{})
	go s.relinkLoop(every)
}

func (s *Server) relinkLoop(every time.Duration) {
	defer close(s.relinkDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopRelink:
			return
		case <-t.C:
		case <-s.relinkNow:
		}
		s.relink()
	}
}

// relink swaps in a snapshot with renewed links. It holds writeMu, so it
// cannot swap in a view older than a concurrent write's.
func (s *Server) relink() {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.snap.Store(s.snap.Load().Relink(s.bundleLink))
}

// stopRelinking ends relinkLoop (Close).
func (s *Server) stopRelinking() {
	if s.stopRelink == nil {
		return
	}
	select {
	case <-s.stopRelink:
	default:
		close(s.stopRelink)
	}
	<-s.relinkDone
}

// answerFresh sends d's offer with a link made now instead of the one the
// snapshot prepared, which is past its Renew time, and asks relinkLoop to
// renew the snapshot. Only this path encodes a success answer per
// request.
//
// A delta release's answer gets fresh file links too: its manifest is
// built again from snap's records for the device's platform.
func (s *Server) answerFresh(c echo.Context, snap *update.Snapshot, d *update.Decision, platform string) error {
	resp := d.Response
	resp.URL = s.offerURL(d)
	if resp.Manifest != nil {
		if av := snap.App(d.AppID); av != nil {
			entries, _, _, ok := update.ManifestEntries(d.AppID, av.Manifests[d.Bundle.Version], update.ManifestFor(platform), s.fileLink)
			if ok {
				resp.Manifest = entries
			}
		}
	}
	return c.JSON(http.StatusOK, &resp)
}

// offerURL is the download URL of d's offer: the one the snapshot prepared
// while it is fresh, else one made now (and relinkLoop is asked to renew
// the snapshot).
func (s *Server) offerURL(d *update.Decision) string {
	if d.Bundle == nil || s.links.Fresh(d.URLRenew) {
		return d.Response.URL
	}
	select {
	case s.relinkNow <- struct{}{}:
	default: // a renewal is asked for already
	}
	return s.bundleLink(d.Bundle).URL
}
