package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/otaship/ota/internal/capawesome"
	"github.com/otaship/ota/internal/landing"
)

// newRouter lists every route once, grouped by who may call it. Reviewing
// who can do what means reading this function.
func (s *Server) newRouter() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.errorHandler
	// observe sits outside Recover so that it logs and counts the 500 of
	// a panic too, and inside RequestID so its line has the id.
	e.Use(middleware.RequestID())
	e.Use(s.observe)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{LogErrorFunc: s.logPanic}))

	// What this server is, for a person who opens its URL (internal/landing).
	home := landing.Handler(landing.Info(s.cfg.PublicURL, s.cfg.Version.Version))
	s.landing.Store(&home)
	e.GET("/", func(c echo.Context) error {
		(*s.landing.Load()).ServeHTTP(c.Response(), c.Request())
		return nil
	})

	// Probes and build information.
	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	e.GET("/version", s.handleVersion)

	// Metrics on the main listener only behind their own token (they name
	// apps, channels and versions); otherwise on --metrics-addr only.
	if s.cfg.MetricsToken != "" {
		e.GET("/metrics", s.handleMetrics)
	}

	// Device endpoints: the updater plugin's protocol. No auth (the plugin
	// sends none); bodies are bounded JSON.
	// Each group is rate-limited per client address (devicelimit.go).
	dl := newDeviceLimits(s.cfg.DeviceRateLimit, s.cfg.Now)
	e.POST("/updates", s.handleUpdates, s.limitDevices(dl.updates))
	e.POST("/check", s.handleUpdates, s.limitDevices(dl.updates)) // the old worker's poll path
	// getBundleDownloadSize: the plugin appends /manifest_size to its
	// updateUrl (§1.6).
	e.POST("/updates/manifest_size", s.handleManifestSize, s.limitDevices(dl.updates))
	e.POST("/check/manifest_size", s.handleManifestSize, s.limitDevices(dl.updates))
	e.POST("/stats", s.handleStats, s.limitDevices(dl.stats), s.limitStatsEvents)
	e.POST("/channel_self", s.handleChannelSelfPost, s.limitDevices(dl.channel))
	e.PUT("/channel_self", s.handleChannelSelfPut, s.limitDevices(dl.channel))
	e.GET("/channel_self", s.handleChannelSelfGet, s.limitDevices(dl.channel))
	e.DELETE("/channel_self", s.handleChannelSelfDelete, s.limitDevices(dl.channel))
	// The other plugin, @capawesome/capacitor-live-update, from the same
	// release state (internal/capawesome): GET /v1/apps/:app/bundles/latest
	// and /v1/apps/:app/channels, sharing these rate limits.
	capawesome.Register(e, s.capawesomeOptions(dl))

	// Bundle download: public, keyed by content address (or the old
	// worker's <channel>-<version>.zip for the default app).
	e.GET("/api/ota/bundle/:key", s.handleBundleDownload)
	e.HEAD("/api/ota/bundle/:key", s.handleBundleDownload)
	// Files of delta releases: public, keyed by content address.
	e.GET("/api/ota/file/:key", s.handleFileDownload)
	e.HEAD("/api/ota/file/:key", s.handleFileDownload)

	// Login: public, rate-limited.
	e.POST("/api/auth/login", s.handleLogin)
	e.POST("/api/v1/auth/login", s.handleLogin)

	// Admin API: bearer token required.
	admin := e.Group("", s.requireAuth)
	// The old worker's paths, kept as aliases for the old scripts.
	admin.POST("/api/ota/admin/ota/upload", s.handleLegacyWebUpload)
	admin.POST("/api/ota/admin/apk/upload", s.handleLegacyAPKUpload)
	admin.DELETE("/api/ota/admin/ota/:channel/:version", s.handleLegacyDelete)

	v1 := admin.Group("/api/v1")
	v1.GET("/apps", s.handleListApps)
	v1.GET("/apps/:app", s.handleGetApp)
	v1.GET("/apps/:app/channels", s.handleListChannels)
	v1.GET("/apps/:app/channels/:channel", s.handleGetChannel)
	v1.PATCH("/apps/:app/channels/:channel", s.handlePatchChannel)
	v1.POST("/apps/:app/channels/:channel/rollback", s.handleRollback)
	v1.POST("/apps/:app/channels/:channel/promote", s.handlePromote)
	v1.DELETE("/apps/:app/channels/:channel/releases/:version", s.handleDeleteRelease)
	v1.GET("/apps/:app/bundles", s.handleListBundles)
	v1.POST("/apps/:app/bundles", s.handleUpload)
	// Files of delta releases, uploaded before the release that names them.
	v1.POST("/apps/:app/files/missing", s.handleFilesMissing)
	v1.PUT("/apps/:app/files/:sha256", s.handlePutFile)
	v1.GET("/apps/:app/history", s.handleHistory)
	v1.PUT("/apps/:app/devices/:device/channel", s.handleSetOverride)
	v1.DELETE("/apps/:app/devices/:device/channel", s.handleDeleteOverride)
	v1.GET("/apps/:app/stats", s.handleStatsQuery)
	v1.POST("/apps/:app/channels/:channel/rollout", s.handleRollout)
	v1.POST("/apps/:app/explain", s.handleExplain)
	v1.GET("/apps/:app/health", s.handleHealth)
	v1.GET("/apps/:app/adoption", s.handleAdoption)
	v1.GET("/apps/:app/devices/:device", s.handleDeviceStory)
	v1.GET("/history", s.handleHistory)
	v1.GET("/me", s.handleMe)
	v1.GET("/backup", s.handleBackup) // user logins only (handler)
	// Webhooks: receivers of release events.
	v1.GET("/webhooks", s.handleListWebhooks)
	v1.POST("/webhooks", s.handleCreateWebhook)
	v1.DELETE("/webhooks/:id", s.handleDeleteWebhook)
	v1.POST("/webhooks/:id/test", s.handleTestWebhook)
	v1.GET("/webhooks/:id/deliveries", s.handleWebhookDeliveries)
	// CI tokens: a user login only (handlers refuse CI tokens).
	v1.GET("/tokens", s.handleListTokens)
	v1.POST("/tokens", s.handleCreateToken)
	v1.DELETE("/tokens/:id", s.handleRevokeToken)

	e.RouteNotFound("/*", func(c echo.Context) error { return echo.ErrNotFound })
	return e
}

func (s *Server) handleHealthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(c echo.Context) error {
	if !s.ready.Load() {
		return newError(http.StatusServiceUnavailable, "unavailable", "server is shutting down")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) handleVersion(c echo.Context) error {
	return c.JSON(http.StatusOK, s.cfg.Version)
}
