package server

import "github.com/labstack/echo/v4"

// TODO(admin owner): the admin API, login, downloads and auth middleware.

func (s *Server) requireAuth(next echo.HandlerFunc) echo.HandlerFunc { return next }
func (s *Server) handleBundleDownload(c echo.Context) error          { return echo.ErrNotImplemented }
func (s *Server) handleLogin(c echo.Context) error                   { return echo.ErrNotImplemented }
func (s *Server) handleLegacyWebUpload(c echo.Context) error         { return echo.ErrNotImplemented }
func (s *Server) handleLegacyAPKUpload(c echo.Context) error         { return echo.ErrNotImplemented }
func (s *Server) handleLegacyDelete(c echo.Context) error            { return echo.ErrNotImplemented }
func (s *Server) handleListApps(c echo.Context) error                { return echo.ErrNotImplemented }
func (s *Server) handleGetApp(c echo.Context) error                  { return echo.ErrNotImplemented }
func (s *Server) handleListChannels(c echo.Context) error            { return echo.ErrNotImplemented }
func (s *Server) handleGetChannel(c echo.Context) error              { return echo.ErrNotImplemented }
func (s *Server) handlePatchChannel(c echo.Context) error            { return echo.ErrNotImplemented }
func (s *Server) handleRollback(c echo.Context) error                { return echo.ErrNotImplemented }
func (s *Server) handlePromote(c echo.Context) error                 { return echo.ErrNotImplemented }
func (s *Server) handleDeleteRelease(c echo.Context) error           { return echo.ErrNotImplemented }
func (s *Server) handleListBundles(c echo.Context) error             { return echo.ErrNotImplemented }
func (s *Server) handleUpload(c echo.Context) error                  { return echo.ErrNotImplemented }
func (s *Server) handleHistory(c echo.Context) error                 { return echo.ErrNotImplemented }
func (s *Server) handleSetOverride(c echo.Context) error             { return echo.ErrNotImplemented }
func (s *Server) handleDeleteOverride(c echo.Context) error          { return echo.ErrNotImplemented }
func (s *Server) handleStatsQuery(c echo.Context) error              { return echo.ErrNotImplemented }
func (s *Server) handleMe(c echo.Context) error                      { return echo.ErrNotImplemented }
