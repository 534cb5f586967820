package ota

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// AdoptionReport is the answer to GET .../apps/{app}/adoption: per UTC day,
// the distinct devices whose latest update check of the day ran each
// version (VersionBuiltin and VersionUnknown included), on Channel or, without
// one, on every channel of the app.
type AdoptionReport struct {
	AppID   string        `json:"app_id"`
	Channel string        `json:"channel,omitempty"`
	Since   time.Time     `json:"since"`
	Days    []AdoptionDay `json:"days"`
}

// AdoptionDay is one day of an AdoptionReport, versions with the most
// devices first.
type AdoptionDay struct {
	Day      time.Time         `json:"day"`
	Devices  int               `json:"devices"`
	Versions []AdoptionVersion `json:"versions"`
}

// AdoptionVersion is one version's devices on a day and their share of the
// day's devices. Estimated marks a HyperLogLog estimate: that day otad saw
// more devices than its device memory holds (see docs/operations.md).
type AdoptionVersion struct {
	Version   string  `json:"version"`
	Devices   int     `json:"devices"`
	Share     float64 `json:"share"`
	Estimated bool    `json:"estimated,omitempty"`
}

// DeviceStory is the answer to GET .../apps/{app}/devices/{device}: what
// otad remembers of one device (its latest check, its offer, its reports)
// and what it would be offered now, explained by the same code as
// otactl explain.
type DeviceStory struct {
	AppID    string `json:"app_id"`
	DeviceID string `json:"device_id"`
	// Known is false when otad's device memory has nothing of it (never
	// checked, or forgotten: the memory keeps the devices checked most
	// recently).
	Known bool `json:"known"`
	// LastCheck is the device's latest update check.
	LastCheck *DeviceCheck `json:"last_check,omitempty"`
	// Offer is the version otad offered it last.
	Offer *DeviceOffer `json:"offer,omitempty"`
	// Pin is the channel an admin (or a legacy plugin) pinned it to.
	Pin string `json:"pin,omitempty"`
	// Reports are its latest stats events within ReportsSince, newest
	// first, at most MaxStoryReports.
	Reports      []DeviceReport `json:"reports"`
	ReportsSince time.Time      `json:"reports_since"`
	// Explain is what its next check would be answered, from what its
	// latest check said; nil without a remembered native version.
	Explain *ExplainResponse `json:"explain,omitempty"`
}

// DeviceCheck is what a device's latest update check said.
type DeviceCheck struct {
	At time.Time `json:"at"`
	// Running is the bundle it ran: a version, VersionBuiltin, or
	// VersionUnknown (one otad does not have).
	Running string `json:"running"`
	Channel string `json:"channel,omitempty"`
	// Source says how the channel was chosen: override, device, default.
	Source   string `json:"source,omitempty"`
	Native   string `json:"native,omitempty"` // version_build
	Plugin   string `json:"plugin,omitempty"` // plugin_version
	Platform string `json:"platform,omitempty"`
	Prod     bool   `json:"is_prod"`
	Emulator bool   `json:"is_emulator"`
}

// DeviceOffer is the version a device was offered last and what became
// of it.
type DeviceOffer struct {
	Version  string    `json:"version"`
	Channel  string    `json:"channel"`
	Previous string    `json:"previous,omitempty"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
	Count    int       `json:"count"`
	// What the device reported or did: downloaded it, installed it (set,
	// app_launch_ready), checked while running it, reported a failure.
	Downloaded bool `json:"downloaded,omitempty"`
	Installed  bool `json:"installed,omitempty"`
	Ran        bool `json:"ran,omitempty"`
	Failed     bool `json:"failed,omitempty"`
	// Stalled: otad counts it as a stalled install of Version.
	Stalled bool `json:"stalled,omitempty"`
}

// DeviceReport is one stats event of a device's story.
type DeviceReport struct {
	Time        time.Time `json:"time"`
	Action      string    `json:"action"`
	VersionName string    `json:"version_name"`
	// Unverified: about a version otad had not offered the device.
	Unverified bool `json:"unverified,omitempty"`
}

// MaxStoryReports bounds DeviceStory.Reports.
const MaxStoryReports = 50

// Adoption reads the app's adoption per day since since (zero: 7 days),
// on channel ("": every channel).
func (c *Client) Adoption(ctx context.Context, app, channel string, since time.Time) (AdoptionReport, error) {
	q := url.Values{}
	if channel != "" {
		q.Set("channel", channel)
	}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339))
	}
	var out AdoptionReport
	err := c.doJSON(ctx, http.MethodGet, appPath(app, "adoption"), q, nil, &out)
	return out, err
}

// DeviceStory reads what otad knows of one device.
func (c *Client) DeviceStory(ctx context.Context, app, device string) (DeviceStory, error) {
	var out DeviceStory
	err := c.doJSON(ctx, http.MethodGet, appPath(app, "devices", device), nil, nil, &out)
	return out, err
}
