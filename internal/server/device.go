package server

import "github.com/labstack/echo/v4"

// TODO(device owner): the device endpoints of protocol.md.

func (s *Server) handleUpdates(c echo.Context) error           { return echo.ErrNotImplemented }
func (s *Server) handleStats(c echo.Context) error             { return echo.ErrNotImplemented }
func (s *Server) handleChannelSelfPost(c echo.Context) error   { return echo.ErrNotImplemented }
func (s *Server) handleChannelSelfPut(c echo.Context) error    { return echo.ErrNotImplemented }
func (s *Server) handleChannelSelfGet(c echo.Context) error    { return echo.ErrNotImplemented }
func (s *Server) handleChannelSelfDelete(c echo.Context) error { return echo.ErrNotImplemented }
