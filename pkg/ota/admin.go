package ota

import "time"

// Bundle kinds. A web bundle is a zip the plugin downloads; an APK is a
// native build kept for history and distribution, never offered to devices.
const (
	KindWeb = "web"
	KindAPK = "apk"
)

// Well-known channels.
const (
	// DefaultChannel is where web uploads go when no channel is named, as in
	// the old deploy script.
	DefaultChannel = "stable"
	// APKChannel is where native builds go, as in the old build script.
	APKChannel = "apk"
)

// Event types recorded in the append-only history.
const (
	EventUpload   = "upload"
	EventActivate = "activate"
	EventRollback = "rollback"
	EventPromote  = "promote"
	EventDelete   = "delete"
	EventPolicy   = "policy"
	EventDefault  = "default_channel"
	EventOverride = "device_override"
	// EventRollout: a staged rollout started or changed (percent, pause,
	// resume, complete).
	EventRollout = "rollout"
	// EventHalt: otad stopped a rollout because too many devices reported
	// failures, and re-pointed the channel.
	EventHalt = "halt"
	// EventRampHold: a scheduled ramp did not take its next step (too few
	// devices reported, or too many failed or stalled); Note says why.
	EventRampHold = "ramp_hold"
)

// LoginRequest is the body of POST /api/auth/login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// LoginResponse carries a bearer token and when it stops working.
type LoginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// App is one Capacitor app, named by its app id (com.example.app).
type App struct {
	ID string `json:"app_id"`
	// DefaultChannel is the public channel devices get when they name none.
	DefaultChannel string    `json:"default_channel"`
	CreatedAt      time.Time `json:"created_at"`
}

// Bundle is one uploaded build: a web zip or an APK. Version names are
// immutable per app and kind: the plugin caches bundles by name.
type Bundle struct {
	AppID      string    `json:"app_id"`
	Version    string    `json:"version"`
	Kind       string    `json:"kind"`
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"size"`
	UploadedAt time.Time `json:"uploaded_at"`
	UploadedBy string    `json:"uploaded_by"`
	Notes      string    `json:"notes,omitempty"`
	// MinNative and MaxNative bound the native versions (version_build) the
	// bundle runs on; empty means unbounded.
	MinNative string `json:"min_native,omitempty"`
	MaxNative string `json:"max_native,omitempty"`
	// Native is the native side the bundle was built with: for an APK what
	// it ships, for a web bundle what it needs.
	Native *NativeFingerprint `json:"native,omitempty"`
	// Encryption is set when the uploaded bytes are an encrypted zip
	// (protocol §6); devices need it to decrypt and verify them. A pointer
	// keeps the million plain bundles of a big store small.
	Encryption *BundleEncryption `json:"encryption,omitempty"`
	// Signature is the base64 SHA256withRSA (PKCS#1 v1.5) signature of the
	// stored bytes, made by otactl with the team's private key, which
	// @capawesome/capacitor-live-update devices configured with the public
	// key require (docs/protocol-capawesome.md §5). Empty: unsigned.
	Signature string `json:"signature,omitempty"`
	// ManifestSignature is the same key's signature of a signed delta
	// release's Capawesome manifest file (CapawesomeManifest of its
	// files, each signed too), served to those devices with it. Empty:
	// the release is offered to them as its zip when it is signed.
	ManifestSignature string `json:"manifest_signature,omitempty"`
	// Files is the number of files of the bundle's delta manifest; 0 for
	// a bundle devices only get as a zip.
	Files int `json:"files,omitempty"`
	// URL is the absolute download URL, filled in by the server from its
	// configured public URL.
	URL string `json:"url,omitempty"`
	// Deleted marks a bundle removed from every channel. Its record stays so
	// the version name cannot be reused with other bytes.
	Deleted bool `json:"deleted,omitempty"`
}

// BundleEncryption is what a device configured with the matching public
// key needs to decrypt and verify an encrypted bundle. None of it is
// secret: every device is sent it.
type BundleEncryption struct {
	// SessionKey is base64(IV) ":" base64(RSA-encrypted AES-128 key), sent
	// to devices as session_key.
	SessionKey string `json:"session_key"`
	// EncryptedChecksum is the hex RSA-encrypted SHA-256 of the plaintext
	// zip, sent to devices as checksum. Bundle.SHA256 is that of the stored
	// (encrypted) bytes.
	EncryptedChecksum string `json:"encrypted_checksum"`
	// KeyID is the first 20 characters of the public key's PEM body, which
	// devices send as key_id.
	KeyID string `json:"key_id"`
}

// ChannelPolicy holds the per-channel rules of protocol §8-F. The zero value
// is not the default: use DefaultChannelPolicy.
type ChannelPolicy struct {
	AllowSelfSet                 bool   `json:"allow_self_set"`
	IOS                          bool   `json:"ios"`
	Android                      bool   `json:"android"`
	Electron                     bool   `json:"electron"`
	DisableAutoUpdate            string `json:"disable_auto_update"`
	DisableAutoUpdateUnderNative bool   `json:"disable_auto_update_under_native"`
	AllowProd                    bool   `json:"allow_prod"`
	AllowDev                     bool   `json:"allow_dev"`
	AllowDevice                  bool   `json:"allow_device"`
	AllowEmulator                bool   `json:"allow_emulator"`
	// AutoHalt makes otad halt the channel's rollout and re-point it to the
	// previous release once HaltOnFailureRate of at least MinDevices
	// devices reported a failure of the active bundle.
	AutoHalt          bool    `json:"auto_halt"`
	HaltOnFailureRate float64 `json:"halt_on_failure_rate"`
	MinDevices        int     `json:"min_devices"`
	// Protected channels take deploys, promotions and rollout steps only
	// from a user login or a CI token with the protected scope; rollback
	// and pause stay open to every admin.
	Protected bool `json:"protected,omitempty"`
	// A device offered a version that keeps polling on another one for
	// StalledWindowSeconds (0: DefaultStalledWindow) and StalledPolls
	// checks (0: DefaultStalledPolls), without installing it or reporting
	// a failure, is a stalled install. Stalled installs count toward the
	// halt like failures unless IgnoreStalled.
	StalledWindowSeconds int64 `json:"stalled_window_seconds,omitempty"`
	StalledPolls         int   `json:"stalled_polls,omitempty"`
	IgnoreStalled        bool  `json:"ignore_stalled,omitempty"`
}

// Defaults of the stalled-install policy.
const (
	DefaultStalledWindow = 30 * time.Minute
	DefaultStalledPolls  = 3
)

// StalledWindow is how long a device must keep polling on another version
// before its install counts as stalled.
func (p *ChannelPolicy) StalledWindow() time.Duration {
	if p.StalledWindowSeconds <= 0 {
		return DefaultStalledWindow
	}
	return time.Duration(p.StalledWindowSeconds) * time.Second
}

// StalledChecks is how many checks on another version a stalled install
// takes at least.
func (p *ChannelPolicy) StalledChecks() int {
	if p.StalledPolls <= 0 {
		return DefaultStalledPolls
	}
	return p.StalledPolls
}

// Defaults of the auto-halt policy.
const (
	DefaultHaltOnFailureRate = 0.2
	DefaultMinDevices        = 50
)

// Values of ChannelPolicy.DisableAutoUpdate.
const (
	DisableNone          = "none"
	DisableMajor         = "major"
	DisableMinor         = "minor"
	DisablePatch         = "patch"
	DisableVersionNumber = "version_number"
)

// DefaultChannelPolicy lets every platform and build type update freely.
func DefaultChannelPolicy() ChannelPolicy {
	return ChannelPolicy{
		IOS: true, Android: true, Electron: true,
		DisableAutoUpdate: DisableNone,
		AllowProd:         true, AllowDev: true, AllowDevice: true, AllowEmulator: true,
		AutoHalt: true, HaltOnFailureRate: DefaultHaltOnFailureRate, MinDevices: DefaultMinDevices,
	}
}

// ChannelPolicyPatch changes some fields of a channel's policy; nil fields
// stay as they are. It is the body of PATCH .../channels/{channel}.
type ChannelPolicyPatch struct {
	AllowSelfSet                 *bool    `json:"allow_self_set,omitempty"`
	IOS                          *bool    `json:"ios,omitempty"`
	Android                      *bool    `json:"android,omitempty"`
	Electron                     *bool    `json:"electron,omitempty"`
	DisableAutoUpdate            *string  `json:"disable_auto_update,omitempty"`
	DisableAutoUpdateUnderNative *bool    `json:"disable_auto_update_under_native,omitempty"`
	AllowProd                    *bool    `json:"allow_prod,omitempty"`
	AllowDev                     *bool    `json:"allow_dev,omitempty"`
	AllowDevice                  *bool    `json:"allow_device,omitempty"`
	AllowEmulator                *bool    `json:"allow_emulator,omitempty"`
	AutoHalt                     *bool    `json:"auto_halt,omitempty"`
	HaltOnFailureRate            *float64 `json:"halt_on_failure_rate,omitempty"`
	MinDevices                   *int     `json:"min_devices,omitempty"`
	Protected                    *bool    `json:"protected,omitempty"`
	StalledWindowSeconds         *int64   `json:"stalled_window_seconds,omitempty"`
	StalledPolls                 *int     `json:"stalled_polls,omitempty"`
	IgnoreStalled                *bool    `json:"ignore_stalled,omitempty"`
	// Default makes this channel the app's public default channel.
	Default *bool `json:"default,omitempty"`
}

// Release is one deployment of a bundle to a channel, in deploy order.
type Release struct {
	Version    string    `json:"version"`
	DeployedAt time.Time `json:"deployed_at"`
}

// Channel is a named stream of releases of one app. Active is the version
// devices are offered: empty when the channel is empty, VersionBuiltin when
// it reverts devices to the bundle shipped in the app.
type Channel struct {
	AppID  string `json:"app_id"`
	Name   string `json:"name"`
	ID     int64  `json:"id"`
	Kind   string `json:"kind"`
	Public bool   `json:"public"`
	Active string `json:"active"`
	// ActiveBundle is the active bundle's record, when there is one.
	ActiveBundle *Bundle       `json:"active_bundle,omitempty"`
	Policy       ChannelPolicy `json:"policy"`
	// Releases lists every version deployed here, oldest first.
	Releases []Release `json:"releases"`
	// Rollout is the staged rollout of Active, nil when Active is served
	// to every device.
	Rollout   *Rollout  `json:"rollout,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Event is one entry of the append-only history. Seq grows by one per event
// across the whole server.
type Event struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Type    string    `json:"type"`
	AppID   string    `json:"app_id"`
	Channel string    `json:"channel,omitempty"`
	Version string    `json:"version,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	SHA256  string    `json:"sha256,omitempty"`
	Note    string    `json:"note,omitempty"`
}

// HistoryPage is one page of history, newest first. Pass Next as the
// "before" query parameter to get the following page; 0 means no more.
type HistoryPage struct {
	Events []Event `json:"events"`
	Next   uint64  `json:"next,omitempty"`
}

// UploadResult is the answer to an upload: the stored bundle, the channel
// that now serves it, and whether the bytes were new.
type UploadResult struct {
	Bundle  Bundle `json:"bundle"`
	Channel string `json:"channel"`
	// Created is false when the same version with the same bytes was
	// already stored (an idempotent retry).
	Created bool `json:"created"`
	// Previous is the version the channel served before, if any.
	Previous string `json:"previous,omitempty"`
	// Warnings tell the uploader what it likely did not mean, although the
	// upload succeeded: a new version whose bytes equal another version of
	// the channel (the build did not change) is one.
	Warnings []string `json:"warnings,omitempty"`
}

// ChannelChange reports a re-pointing of a channel: rollback, promote or
// delete with walk-back.
type ChannelChange struct {
	AppID   string `json:"app_id"`
	Channel string `json:"channel"`
	From    string `json:"from"`
	To      string `json:"to"`
}

// RollbackRequest is the body of POST .../channels/{channel}/rollback. An
// empty To means the release before the active one.
type RollbackRequest struct {
	To string `json:"to,omitempty"`
}

// PromoteRequest is the body of POST .../channels/{channel}/promote: the
// version From serves (or Version, when given) becomes active here too.
type PromoteRequest struct {
	From    string `json:"from"`
	Version string `json:"version,omitempty"`
}

// DeviceOverrideRequest is the body of PUT .../devices/{device}/channel.
type DeviceOverrideRequest struct {
	Channel string `json:"channel"`
}

// ServerInfo is the JSON answer to GET / (a browser gets a page with the
// same content): what this server is and where to read more, so a person
// who opens the server's URL learns what to do with it.
type ServerInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Version     string `json:"version"`
	// PublicURL is the server's configured public URL; the plugin's URLs
	// below are built from it.
	PublicURL  string `json:"public_url"`
	UpdateURL  string `json:"update_url"`
	StatsURL   string `json:"stats_url"`
	ChannelURL string `json:"channel_url"`
	// API is the root of the admin API (bearer token required).
	API  string `json:"api"`
	Docs string `json:"docs"`
	// Dashboard is the dashboard's URL when otad serves one.
	Dashboard string `json:"dashboard,omitempty"`
}

// VersionInfo is the answer to GET /version.
type VersionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
}
