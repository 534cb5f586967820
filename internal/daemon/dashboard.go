package daemon

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"time"

	"github.com/otaship/ota/internal/dashboard"
	"github.com/otaship/ota/internal/server"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/version"
)

// mountDashboard serves the dashboard at /ui beside the API. Its CSRF and
// cookie key is derived from the token signing key, so otad replicas that
// share the key accept each other's forms, and it is not the signing key
// itself.
func mountDashboard(srv *server.Server, st store.Store, signingKey []byte, publicURL string, trustProxy bool, log *slog.Logger) error {
	mac := hmac.New(sha256.New, signingKey)
	mac.Write([]byte("otad dashboard v1"))
	d, err := dashboard.New(dashboard.Config{
		API:        srv.InternalHandler(),
		Bundles:    st,
		Secret:     mac.Sum(nil),
		PublicURL:  publicURL,
		TrustProxy: trustProxy,
		Version:    version.Info().Version,
		Log:        log,
		// A health summary reads up to 100,000 stored events: several
		// open channel pages share one for a few seconds.
		HealthCache: 5 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	srv.MountDashboard(dashboard.Prefix, d)
	return nil
}
