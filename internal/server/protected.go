package server

import (
	"context"
	"errors"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Protected channels take deploys, promotions and rollout steps only from
// a user login or a CI token with the protected scope. Rollback, pause and
// deleting a release stay open to every admin: stopping a bad release
// must never wait for someone. The history event's actor says who
// approved the change (ramp steps name who scheduled the ramp).

// requireProtected refuses what to a CI token without the protected
// scope when ch is protected.
func requireProtected(c echo.Context, ch *ota.Channel, what string) error {
	t := ciToken(c)
	if t == nil || t.Protected || !ch.Policy.Protected {
		return nil
	}
	return forbidden("channel %s is protected: %s needs a user login (otactl login) or a CI token made with --protected; "+
		"CI token %q may still roll back and pause", ch.Name, what, t.Name)
}

// requireProtectedByName is requireProtected for a channel that may not
// exist yet (a first deploy creates it, unprotected).
func (s *Server) requireProtectedByName(ctx context.Context, c echo.Context, app, channel, what string) error {
	if t := ciToken(c); t == nil || t.Protected {
		return nil // no need to read the channel
	}
	ch, err := s.store.GetChannel(ctx, app, channel)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return requireProtected(c, &ch, what)
}
