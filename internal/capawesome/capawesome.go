// Package capawesome serves the device endpoints of
// @capawesome/capacitor-live-update, the other open live-update plugin for
// Capacitor, from the same release state as /updates: a latest-bundle
// check, the channel listing and (with a Manifests source) the files of
// manifest bundles. Its contract is docs/protocol-capawesome.md.
//
// It holds no rules of its own: a check is put in the terms of the update
// decision (update.DecideFor) and the decision's answer in the plugin's
// shape, so channels, staged-rollout cohorts, native ranges, device
// overrides and failure memory apply to these devices exactly as to the
// other plugin's. internal/server registers it (Register) and provides the
// release state (Backend); the package never sees the store.
package capawesome

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// Route templates, as the router and the metrics name them. The plugin
// fixes the paths: https://{serverDomain}/v1/apps/{appId}/...
const (
	RouteLatest   = "/v1/apps/:app/bundles/latest"
	RouteChannels = "/v1/apps/:app/channels"
	RouteFiles    = "/v1/apps/:app/bundles/:bundle/files"
)

// Backend is what the endpoints need from the server.
type Backend interface {
	// Snapshot returns the release state with appID loaded (an unknown
	// app is simply absent from it).
	Snapshot(ctx context.Context, appID string) (*update.Snapshot, error)
	// Failures is the failure memory the decision consults.
	Failures() update.FailureMemory
	// Checked records an answered check the way /updates records its own
	// (metrics now; what a later check tells of the device, later).
	Checked(snap *update.Snapshot, req *ota.UpdateRequest, d *update.Decision)
	// OfferURL is where the device downloads d's bundle zip: the URL the
	// snapshot prepared, or a fresh one when that is a presigned URL near
	// its expiry.
	OfferURL(d *update.Decision) string
}

// Options configure Register.
type Options struct {
	Backend Backend
	// PublicURL is otad's configured public URL, the base of the URLs of
	// manifest files (zip URLs come prepared in the snapshot).
	PublicURL string
	// CheckLimit and ChannelLimit are the per-address limits of update
	// checks and channel calls, shared with the other plugin's endpoints
	// (nil: none).
	CheckLimit, ChannelLimit echo.MiddlewareFunc
	// Manifests, when set, serves the bundles it has files for as manifest
	// bundles to plugins from 6.5.0 on, and registers RouteFiles. Without
	// it every bundle is served as its zip.
	Manifests Manifests
}

// Register adds the plugin's routes to e.
func Register(e *echo.Echo, o Options) {
	h := &handlers{o: o}
	e.GET(RouteLatest, h.latest, mw(o.CheckLimit)...)
	e.GET(RouteChannels, h.channels, mw(o.ChannelLimit)...)
	if o.Manifests != nil {
		// Downloads, like the bundle and file routes of the other plugin,
		// are not rate limited: one update fetches many files at once.
		e.GET(RouteFiles, h.files)
	}
}

func mw(m echo.MiddlewareFunc) []echo.MiddlewareFunc {
	if m == nil {
		return nil
	}
	return []echo.MiddlewareFunc{m}
}

type handlers struct {
	o        Options
	listings listings
}

// Device-id header the plugin sends with every request (§2).
const headerDeviceID = "X-Capawesome-Device-Id"

// badRequest answers a request the plugin would not send. Any non-2xx is
// "no update" to the plugin; the body is for people.
func badRequest(c echo.Context, msg string) error {
	return c.JSON(http.StatusBadRequest, ota.ErrorResponse{Code: ota.ErrCodeBadRequest, Message: msg})
}

// checkApp validates the app id of the path as the server validates app
// ids everywhere: 1-128 of [A-Za-z0-9._-].
func checkApp(id string) bool {
	if id == "" || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// noUpdateStatus is the status of every answer that offers nothing. The
// plugin takes any non-2xx as "no update" and a 2xx as a bundle to
// install, so "nothing for you" must not be a 2xx (§3.3).
const noUpdateStatus = http.StatusNotFound

// latest answers GET /v1/apps/{appId}/bundles/latest: the decision for the
// device, as a bundle to install (200) or the refusal /updates would send
// (404, which the plugin reads as "no update").
func (h *handlers) latest(c echo.Context) error {
	appID := c.Param("app")
	if !checkApp(appID) {
		return badRequest(c, "app id "+strconv.Quote(clip(appID))+" is invalid; set the plugin's appId to the app id of otad, e.g. com.example.app")
	}
	q, err := ParseQuery(c.Request().URL.RawQuery, c.Request().Header.Get(headerDeviceID))
	if err != nil {
		return badRequest(c, err.Error())
	}
	req := q.Request(appID)
	snap, err := h.o.Backend.Snapshot(c.Request().Context(), appID)
	if err != nil {
		return err
	}
	d := update.DecideFor(snap, update.PluginCapawesome, &req, "", h.o.Backend.Failures())
	h.o.Backend.Checked(snap, &req, &d)
	c.Response().Header().Set("Cache-Control", "no-store")
	if d.Bundle == nil {
		resp := d.Response
		return c.JSON(noUpdateStatus, &resp)
	}
	return c.JSON(http.StatusOK, h.answer(snap.App(appID), q.PluginVersion, &d))
}

// answer is the plugin's shape of an offer: the bundle's zip, or its files
// when the Manifests has them and the plugin installs manifest bundles.
func (h *handlers) answer(app *update.AppView, pluginVersion string, d *update.Decision) *ota.LatestBundle {
	b := d.Bundle
	a := &ota.LatestBundle{
		ArtifactType: ota.ArtifactZip,
		BundleID:     d.Response.Version,
		ChannelName:  d.Channel,
		Checksum:     b.SHA256,
		Signature:    b.Signature,
		URL:          h.o.Backend.OfferURL(d),
	}
	if m := h.o.Manifests; m != nil && app != nil && m.Has(app, b) && SupportsManifest(pluginVersion) {
		// The files are verified one by one from their own headers; the
		// zip's checksum and signature would be wrong for them.
		a.ArtifactType, a.Checksum, a.Signature = ota.ArtifactManifest, "", ""
		a.URL = filesURL(h.o.PublicURL, app.App.ID, b.Version)
	}
	return a
}

// Bounds of the channel listing's paging (§6).
const (
	defaultChannelPage = 50 // the plugin's documented default
	maxChannelPage     = 1000
)

// channels answers GET /v1/apps/{appId}/channels: the channels a device may
// name (public or self-settable), as the plugin's bare array with string
// ids, filtered by ?query (a part of the name, any case) and paged by
// ?offset and ?limit. The plugin sends no platform or device, so no
// platform filter applies.
func (h *handlers) channels(c echo.Context) error {
	appID := c.Param("app")
	if !checkApp(appID) {
		return badRequest(c, "app id "+strconv.Quote(clip(appID))+" is invalid")
	}
	var limit, offset = defaultChannelPage, 0
	var search string
	err := walkQuery(c.Request().URL.RawQuery, func(key, value string) error {
		var err error
		switch key {
		case "limit":
			limit, err = pageParam(key, value, 1, maxChannelPage)
		case "offset":
			offset, err = pageParam(key, value, 0, 1<<30)
		case "query":
			if len(value) > maxValueLen {
				return queryErrorf("query is %d bytes long; the limit is %d", len(value), maxValueLen)
			}
			search = strings.ToLower(value)
		}
		return err
	})
	if err != nil {
		return badRequest(c, err.Error())
	}
	snap, err := h.o.Backend.Snapshot(c.Request().Context(), appID)
	if err != nil {
		return err
	}
	app := snap.App(appID)
	if app == nil {
		return c.JSON(http.StatusNotFound, ota.ErrorResponse{Code: ota.ErrCodeAppNotFound, Message: "app " + clip(appID) + " is not known to this server"})
	}
	out := make([]ota.CapawesomeChannel, 0, len(app.List))
	for _, cv := range app.List {
		ch := &cv.Channel
		if !ch.Public && !ch.Policy.AllowSelfSet {
			continue
		}
		if search != "" && !strings.Contains(strings.ToLower(ch.Name), search) {
			continue
		}
		if offset > 0 {
			offset--
			continue
		}
		if limit >= 0 && len(out) == limit {
			break
		}
		out = append(out, ota.CapawesomeChannel{ID: strconv.FormatInt(ch.ID, 10), Name: ch.Name})
	}
	return c.JSON(http.StatusOK, out)
}

// pageParam reads a paging number in [min, max].
func pageParam(key, value string, min, max int) (int, error) {
	n, err := strconv.Atoi(value)
	if err != nil || n < min || n > max {
		return 0, queryErrorf("%s %q must be a whole number from %d to %d", key, clip(value), min, max)
	}
	return n, nil
}
