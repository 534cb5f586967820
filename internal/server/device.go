package server

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// The device endpoints speak the updater plugin's protocol (protocol.md §1–§4).
// Business outcomes, refusals included, are HTTP 200 with a JSON body the
// plugin understands; only malformed requests get a 4xx, and a 429 only
// from the per-address rate limit (devicelimit.go).

// bodyPool recycles request body buffers: device endpoints are the hot path
// and their bodies are small.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readDeviceBody reads the whole bounded body into a pooled buffer. The
// caller must put the buffer back. An empty (or blank) body is a 400, an
// oversized one a 413.
func (s *Server) readDeviceBody(c echo.Context) (*bytes.Buffer, error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	if err := readBounded(buf, c.Request().Body, s.cfg.MaxJSONBytes); err != nil {
		releaseBody(buf)
		if errors.Is(err, errBodyTooLarge) {
			return nil, newError(http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge, "JSON body is larger than %d bytes", s.cfg.MaxJSONBytes)
		}
		return nil, newError(http.StatusBadRequest, ota.ErrCodeInvalidJSON, "cannot read the request body: %v", err)
	}
	if len(bytes.TrimSpace(buf.Bytes())) == 0 {
		releaseBody(buf)
		return nil, newError(http.StatusBadRequest, ota.ErrCodeInvalidJSON, "request body is empty; send a JSON object")
	}
	return buf, nil
}

var errBodyTooLarge = errors.New("request body too large")

// readBounded appends body to buf, failing with errBodyTooLarge once more
// than limit bytes came. It reads straight into buf's spare room, where
// http.MaxBytesReader and Buffer.ReadFrom cost a wrapper and growth on
// every device request.
func readBounded(buf *bytes.Buffer, body io.Reader, limit int64) error {
	for {
		if buf.Available() < 512 {
			buf.Grow(512)
		}
		room := buf.AvailableBuffer()
		room = room[:cap(room)]
		if left := limit + 1 - int64(buf.Len()); int64(len(room)) > left {
			room = room[:left]
		}
		n, err := body.Read(room)
		buf.Write(room[:n]) // room is buf's own spare capacity: a copy onto itself
		if int64(buf.Len()) > limit {
			return errBodyTooLarge
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// releaseBody returns a buffer to the pool unless it grew unusually large,
// so one big request does not pin memory.
func releaseBody(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 {
		bodyPool.Put(buf)
	}
}

// decodeDeviceJSON reads a device's JSON object into v. Unknown fields are
// accepted: newer plugins add keys.
func (s *Server) decodeDeviceJSON(c echo.Context, v any) error {
	buf, err := s.readDeviceBody(c)
	if err != nil {
		return err
	}
	defer releaseBody(buf)
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		return invalidJSON(err)
	}
	return nil
}

func invalidJSON(err error) error {
	return newError(http.StatusBadRequest, ota.ErrCodeInvalidJSON, "request body is not the JSON object the updater plugin sends: %v", err)
}

// handleUpdates answers an update check (POST /updates, and the old
// worker's /check) from the in-memory snapshot; it never touches the disk.
func (s *Server) handleUpdates(c echo.Context) error {
	buf, err := s.readDeviceBody(c)
	if err != nil {
		return err
	}
	var req ota.UpdateRequest
	err = decodeUpdateRequest(buf.Bytes(), &req)
	releaseBody(buf) // req holds copies, not the buffer's bytes
	if err != nil {
		return invalidJSON(err)
	}
	req.DeviceID = strings.ToLower(req.DeviceID)
	// The old /check body has no device id; any other must be one the
	// plugin could have sent, as on every device route.
	if req.DeviceID != "" && !deviceIDValid(req.DeviceID) {
		return invalidDevice(req.DeviceID)
	}
	snap, err := s.snapFor(c.Request().Context(), cmp.Or(req.AppID, s.cfg.DefaultApp))
	if err != nil {
		return err
	}
	d := update.DecideWith(snap, &req, s.cfg.DefaultApp, s.health)
	s.observeCheck(snap, &req, &d)
	if d.Bundle != nil && !s.links.Fresh(d.URLRenew) {
		return s.answerFresh(c, snap, &d, req.Platform)
	}
	// An offer's answer is encoded once, when the snapshot is built; c.JSON
	// would encode the same bytes again. A query (?pretty) or debug mode
	// asks echo for indented output, which only c.JSON writes.
	if d.Body != nil && c.Request().URL.RawQuery == "" && !c.Echo().Debug {
		if d.Gzip != nil {
			// A delta release's manifest, gzipped once with the snapshot:
			// the plugins' HTTP stacks ask for gzip and undo it.
			h := c.Response().Header()
			h.Set(echo.HeaderVary, echo.HeaderAcceptEncoding)
			if acceptsGzip(c.Request().Header.Get(echo.HeaderAcceptEncoding)) {
				h.Set(echo.HeaderContentEncoding, "gzip")
				return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, d.Gzip)
			}
		}
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, d.Body)
	}
	// A copy, so that only this path puts an answer on the heap.
	resp := d.Response
	return c.JSON(http.StatusOK, &resp)
}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip: a
// "gzip" coding whose q is not 0, or else a "*" one. It allocates nothing.
func acceptsGzip(header string) bool {
	star := false
	for header != "" {
		var coding string
		coding, header, _ = strings.Cut(header, ",")
		name, params, _ := strings.Cut(coding, ";")
		name = strings.TrimSpace(name)
		refused := false
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			refused = strings.Trim(strings.TrimSpace(v), "0.") == "" // q=0, q=0.0, …
		}
		switch {
		case strings.EqualFold(name, "gzip"):
			return !refused
		case name == "*":
			star = !refused
		}
	}
	return star
}

// handleStats stores device events: one object or an array of them (§3.1).
// Every stored batch is a 200, whatever its actions: any other 4xx makes
// the plugin drop the batch for good.
func (s *Server) handleStats(c echo.Context) error {
	buf, err := s.readDeviceBody(c)
	if err != nil {
		return err
	}
	defer releaseBody(buf)
	data := bytes.TrimSpace(buf.Bytes())
	var events []ota.StatsEvent
	var raws [][]byte // see decodeStatsEvents
	switch data[0] {
	case '[':
		if events, raws, err = decodeStatsEvents(data); err != nil {
			return invalidJSON(err)
		}
	case '{':
		events = make([]ota.StatsEvent, 1)
		raw, err := decodeStatsEvent(data, &events[0])
		if err != nil {
			return invalidJSON(err)
		}
		raws = [][]byte{raw}
	default:
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidJSON, "stats body must be a JSON object or an array of objects")
	}
	if len(events) > maxStatsEvents {
		return newError(http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge,
			"%d stats events in one request; send at most %d", len(events), maxStatsEvents)
	}
	if len(events) == 0 {
		return c.JSON(http.StatusOK, ota.StatsResponse{Status: "ok"})
	}
	now := s.cfg.Now()
	stored := make([]store.StoredStat, len(events))
	var unverified []bool // nil: every report verified
	for i := range events {
		ev := &events[i]
		var raw []byte
		if raws != nil {
			raw = raws[i]
		}
		// Every event names a device the plugin could have sent; its
		// other fields are cut to what the plugin sends (devicefields.go).
		// The bytes as sent are stored only if nothing below changes the
		// event.
		if !deviceIDValid(ev.DeviceID) {
			return invalidDevice(ev.DeviceID)
		}
		if lower := strings.ToLower(ev.DeviceID); lower != ev.DeviceID {
			ev.DeviceID, raw = lower, nil
		}
		if ev.AppID == "" {
			ev.AppID, raw = s.cfg.DefaultApp, nil
		}
		if boundStatsEvent(ev) {
			raw = nil
		}
		// A report about a version otad never offered this device is
		// kept, but counts for nothing: made-up reports must cost a
		// check each.
		if healthAction(ev.Action) && !s.offers.Offered(ev.AppID, ev.DeviceID, update.EventVersion(ev.VersionName)) {
			if unverified == nil {
				unverified = make([]bool, len(events))
			}
			unverified[i] = true
		}
		stored[i] = store.StoredStat{Received: now, Event: *ev, Raw: raw, Unverified: unverified != nil && unverified[i]}
	}
	// The apps the events name are loaded before anything is stored: a
	// store that cannot be read then fails the batch as a whole, and the
	// plugin's retry stores it once.
	snap, err := s.snapForEvents(c.Request().Context(), events)
	if err != nil {
		return err
	}
	switch err := s.store.AppendStats(c.Request().Context(), stored); {
	case errors.Is(err, store.ErrStorageFull):
		// The disk's last room is for uploads and rollbacks. The events
		// still count toward device health below, which is what halts a
		// bad release; a 5xx would only make every device resend them.
		s.warnStatsDropped(len(stored), err)
	case err != nil:
		// A 5xx makes the plugin keep the batch and retry it.
		return fmt.Errorf("store %d stats events: %w", len(stored), err)
	}
	s.observeStats(snap, events)
	// Counting happens after the events are stored, so a batch the plugin
	// retries after a 5xx is not lost; distinct-device counting makes the
	// retry harmless.
	s.watchReports(events, unverified)
	if err := s.afterStats(c.Request().Context(), snap, events, unverified); err != nil {
		s.reqLog(c).Error("device health after stats", "err", err)
	}
	return c.JSON(http.StatusOK, ota.StatsResponse{Status: "ok"})
}

// warnStatsDropped logs that stats went unstored for lack of disk, at
// most once a minute.
func (s *Server) warnStatsDropped(n int, err error) {
	now := s.cfg.Now().Unix()
	last := s.statsDroppedAt.Load()
	if now-last < 60 || !s.statsDroppedAt.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("device stats not stored: the disk is nearly full (they still count toward device health); free space or move the data dir",
		"events", n, "err", err)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Channel refusal messages, Capgo's words (§4.1), and otad's for a pin
// an admin set.
const (
	msgMissingChannel  = "Cannot find channel in body"
	msgChannelNotFound = "Cannot find channel"
	msgSelfSetRefused  = "This channel does not allow devices to self associate"
	msgAdminPin        = "An administrator assigned this device's channel; the device cannot change it"
)

func channelRefusal(code, msg string) ota.ChannelSelfResponse {
	return ota.ChannelSelfResponse{Error: code, Message: msg}
}

// legacyChannelPlugin reports whether a plugin keeps its channel on the
// server rather than on the device: majors 5 to 7 before minor 34, and
// anything older than 5 (§4.1). An unreadable version counts as modern.
func legacyChannelPlugin(pluginVersion string) bool {
	v, err := update.CoerceNative(pluginVersion)
	if err != nil || pluginVersion == "" {
		return false
	}
	return v.Major < 5 || (v.Major <= 7 && v.Minor < 34)
}

// handleChannelSelfPost is setChannel. Modern plugins keep the channel on
// the device, so the server only validates it; legacy ones get a
// server-side override. Asking for the app's public default answers
// "unset", so the device follows the default even when it changes.
func (s *Server) handleChannelSelfPost(c echo.Context) error {
	var req ota.DeviceInfo
	if err := s.decodeDeviceJSON(c, &req); err != nil {
		return err
	}
	if req.DeviceID != "" && !deviceIDValid(req.DeviceID) {
		return invalidDevice(req.DeviceID)
	}
	appID := req.AppID
	if appID == "" {
		appID = s.cfg.DefaultApp
	}
	if req.Channel == "" {
		return c.JSON(http.StatusOK, channelRefusal(ota.ChMissingChannel, msgMissingChannel))
	}
	snap, err := s.snapFor(c.Request().Context(), appID)
	if err != nil {
		return err
	}
	app := snap.App(appID)
	var cv *update.ChannelView
	if app != nil {
		cv = app.Channels[req.Channel]
	}
	if cv == nil {
		return c.JSON(http.StatusOK, channelRefusal(ota.ChNotFound, msgChannelNotFound))
	}
	public := cv.Channel.Public
	if !public && !cv.Channel.Policy.AllowSelfSet {
		return c.JSON(http.StatusOK, channelRefusal(ota.ChSelfSetNotAllowed, msgSelfSetRefused))
	}
	if !legacyChannelPlugin(req.PluginVersion) {
		if public {
			return c.JSON(http.StatusOK, ota.ChannelSelfResponse{Status: "ok", Unset: true})
		}
		allow := true
		return c.JSON(http.StatusOK, ota.ChannelSelfResponse{Status: "ok", AllowSet: &allow})
	}

	device, err := checkDevice(req.DeviceID)
	if err != nil {
		return err
	}
	// The pin is the device's own: it may move or drop it, never an
	// admin's (the store refuses with ErrConflict).
	ctx, self := c.Request().Context(), "device:"+device
	if public {
		// Choosing the public default means having no override.
		err = s.store.DeleteOverride(ctx, appID, device, true, self, s.cfg.Now())
		if errors.Is(err, store.ErrNotFound) {
			return c.JSON(http.StatusOK, ota.ChannelSelfResponse{Status: "ok"})
		}
	} else {
		err = s.store.SetOverride(ctx, store.DeviceOverride{AppID: appID, DeviceID: device, Channel: cv.Channel.Name, ByDevice: true}, self, s.cfg.Now())
	}
	if errors.Is(err, store.ErrConflict) {
		return c.JSON(http.StatusOK, channelRefusal(ota.ChCannotOverride, msgAdminPin))
	}
	if err != nil {
		return fmt.Errorf("set channel %s for device %s of %s: %w", cv.Channel.Name, device, appID, err)
	}
	if err := s.refreshApp(ctx, appID); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ota.ChannelSelfResponse{Status: "ok"})
}

// handleChannelSelfPut is getChannel: the channel §8-C resolves for the
// device, which the device persists as its defaultChannel. When nothing
// resolves it is a 400 channel_not_found, on which the plugin keeps its
// local channel rather than persisting a guess.
func (s *Server) handleChannelSelfPut(c echo.Context) error {
	var req ota.DeviceInfo
	if err := s.decodeDeviceJSON(c, &req); err != nil {
		return err
	}
	if req.DeviceID != "" && !deviceIDValid(req.DeviceID) {
		return invalidDevice(req.DeviceID)
	}
	appID := req.AppID
	if appID == "" {
		appID = s.cfg.DefaultApp
	}
	snap, err := s.snapFor(c.Request().Context(), appID)
	if err != nil {
		return err
	}
	app := snap.App(appID)
	if app == nil {
		return newError(http.StatusBadRequest, ota.ChNotFound, "app %s is not known to this server", clip(appID))
	}
	requested := req.DefaultChannel
	if requested == "" {
		requested = req.Channel
	}
	cv, source := app.Resolve(strings.ToLower(req.DeviceID), req.Platform, requested)
	if cv == nil {
		if requested != "" {
			return newError(http.StatusBadRequest, ota.ChNotFound,
				"channel %q does not exist or is neither public nor self-settable", clip(requested))
		}
		return newError(http.StatusBadRequest, ota.ChNotFound, "app %s has no public channel", appID)
	}
	status := "default"
	if source == update.SourceOverride {
		status = "override"
	}
	allow := cv.Channel.Policy.AllowSelfSet
	return c.JSON(http.StatusOK, ota.ChannelSelfResponse{Channel: cv.Channel.Name, Status: status, AllowSet: &allow})
}

// handleChannelSelfGet is listChannels: the channels a device of this kind
// may pick, as a bare array with numeric ids (§4.4). Every field comes as a
// query parameter.
func (s *Server) handleChannelSelfGet(c echo.Context) error {
	if d := c.QueryParam("device_id"); d != "" && !deviceIDValid(d) {
		return invalidDevice(d)
	}
	appID := c.QueryParam("app_id")
	if appID == "" {
		appID = s.cfg.DefaultApp
	}
	snap, err := s.snapFor(c.Request().Context(), appID)
	if err != nil {
		return err
	}
	app := snap.App(appID)
	if app == nil {
		return newError(http.StatusNotFound, ota.ErrCodeAppNotFound, "app %s is not known to this server", clip(appID))
	}
	platform := c.QueryParam("platform")
	emulator := queryBool(c, "is_emulator", false)
	prod := queryBool(c, "is_prod", true)
	out := make([]ota.ChannelListEntry, 0, len(app.List))
	for _, cv := range app.List {
		ch := &cv.Channel
		p := &ch.Policy
		if !ch.Public && !p.AllowSelfSet {
			continue
		}
		if !update.PlatformEnabled(p, platform) ||
			(emulator && !p.AllowEmulator) || (!emulator && !p.AllowDevice) ||
			(prod && !p.AllowProd) || (!prod && !p.AllowDev) {
			continue
		}
		out = append(out, ota.ChannelListEntry{ID: ch.ID, Name: ch.Name, Public: ch.Public, AllowSelfSet: p.AllowSelfSet})
	}
	return c.JSON(http.StatusOK, out)
}

// queryBool reads a stringified boolean; absent or unreadable values take
// def, as a missing is_emulator/is_prod does in an update check.
func queryBool(c echo.Context, name string, def bool) bool {
	v, err := strconv.ParseBool(c.QueryParam(name))
	if err != nil {
		return def
	}
	return v
}

// handleChannelSelfDelete is a legacy plugin's unsetChannel: it removes
// the device's server-side override, when the device set it itself; an
// admin's pin stays (cannot_override). Old plugins send a JSON body; Capgo
// reads the query string; both are accepted. Having no override is fine.
func (s *Server) handleChannelSelfDelete(c echo.Context) error {
	appID, deviceID := c.QueryParam("app_id"), c.QueryParam("device_id")
	if deviceID == "" && c.Request().ContentLength != 0 {
		var req ota.DeviceInfo
		if err := s.decodeDeviceJSON(c, &req); err != nil {
			return err
		}
		deviceID = req.DeviceID
		if appID == "" {
			appID = req.AppID
		}
	}
	if appID == "" {
		appID = s.cfg.DefaultApp
	}
	device, err := checkDevice(deviceID)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	switch err := s.store.DeleteOverride(ctx, appID, device, true, "device:"+device, s.cfg.Now()); {
	case errors.Is(err, store.ErrNotFound):
		// No such app or no override: the device is unset already.
	case errors.Is(err, store.ErrConflict):
		return c.JSON(http.StatusOK, channelRefusal(ota.ChCannotOverride, msgAdminPin))
	case err != nil:
		return fmt.Errorf("unset channel of device %s of %s: %w", device, appID, err)
	default:
		if err := s.refreshApp(ctx, appID); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, ota.ChannelSelfResponse{Status: "ok"})
}
