package server

import (
	"context"
	"fmt"
	"time"

	"github.com/otaship/ota/internal/offers"
	"github.com/otaship/ota/internal/store"
)

// offerFlushDelay is how long recorded offers may stay only in memory:
// the memory is saved in batches at most this often. A restart within it
// forgets the offers since, which only costs those devices' next reports
// their count (until their next check).
const offerFlushDelay = 5 * time.Second

// offerSaveBatch is how many offer records one store transaction writes.
const offerSaveBatch = 10_000

// loadOffers fills the offer memory from the store at start.
func (s *Server) loadOffers(ctx context.Context) error {
	n := 0
	err := s.store.LoadOffers(ctx, func(o store.DeviceOffer) error {
		s.offers.Put(o)
		n++
		return nil
	})
	if err != nil {
		return err
	}
	if n > s.offers.Len() {
		// More than the memory holds (its bound was lowered): the rest
		// goes from the store at the next save.
		s.scheduleOfferFlush()
	}
	return nil
}

// scheduleOfferFlush saves the offer memory's changes within
// offerFlushDelay. The memory calls it once each time it goes from saved
// to changed, so the /updates path pays for a timer once per delay.
func (s *Server) scheduleOfferFlush() {
	time.AfterFunc(offerFlushDelay, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.flushOffers(ctx); err != nil {
			s.log.Error("device offers not saved; retrying with the next offers", "err", err)
		}
	})
}

// flushOffers saves the offers changed since the last flush. What could
// not be saved is queued again.
func (s *Server) flushOffers(ctx context.Context) error {
	if err := s.flushAdoption(ctx, false); err != nil {
		s.log.Error("adoption counts not saved; retrying with the next offers", "err", err)
	}
	recs := s.offers.TakeDirty(nil, s.cfg.Now())
	for len(recs) > 0 {
		n := min(len(recs), offerSaveBatch)
		if err := s.store.SaveOffers(ctx, recs[:n]); err != nil {
			s.offers.Requeue(recs)
			return fmt.Errorf("save %d device offers: %w", len(recs), err)
		}
		recs = recs[n:]
	}
	return nil
}

// Offers is the memory of what this otad offered each device, for code
// that learns of offers made elsewhere (another replica, an import) and
// for tests that stand in for the update checks a report follows.
func (s *Server) Offers() *offers.Memory { return s.offers }

// FlushOffers saves the offers not saved yet; Close calls it.
func (s *Server) FlushOffers(ctx context.Context) error { return s.flushOffers(ctx) }
