// Package ota holds the wire types shared by otad and otactl: the device
// protocol spoken by @capgo/capacitor-updater in self-hosted mode, the admin
// API's requests and responses, the error envelope with its stable codes, and
// a Go client for the admin API.
//
// It is the one public package of the project. It imports nothing from
// internal/ and no server or CLI framework, so it stays small and stable.
package ota

// DeviceInfo is the info object the updater plugin sends with every update
// check, stats event and channel call (protocol §1.2). Unknown fields are
// ignored on decode; missing optional fields stay at their zero values.
type DeviceInfo struct {
	Platform      string `json:"platform"`
	DeviceID      string `json:"device_id"`
	AppID         string `json:"app_id"`
	CustomID      string `json:"custom_id"`
	VersionBuild  string `json:"version_build"`
	VersionCode   string `json:"version_code"`
	VersionOS     string `json:"version_os"`
	VersionName   string `json:"version_name"`
	PluginVersion string `json:"plugin_version"`
	// IsEmulator and IsProd are pointers because plugins before v5 may omit
	// them; the server then assumes false and true, as Capgo does.
	IsEmulator     *bool  `json:"is_emulator,omitempty"`
	IsProd         *bool  `json:"is_prod,omitempty"`
	InstallSource  string `json:"install_source,omitempty"`
	DefaultChannel string `json:"defaultChannel"`
	KeyID          string `json:"key_id,omitempty"`
	// Channel is only sent by the old worker's /check body and by setChannel
	// (POST channel_self).
	Channel string `json:"channel,omitempty"`
}

// Emulator reports the is_emulator flag, false when absent.
func (d *DeviceInfo) Emulator() bool { return d.IsEmulator != nil && *d.IsEmulator }

// Prod reports the is_prod flag, true when absent.
func (d *DeviceInfo) Prod() bool { return d.IsProd == nil || *d.IsProd }

// UpdateRequest is the body of POST /updates (and the old worker's /check).
type UpdateRequest = DeviceInfo

// UpdateResponse is the answer to an update check. A success carries Version,
// URL, Checksum and SessionKey and nothing of Error/Message/Kind; a refusal or
// "no update" carries Error, Message and Kind (always HTTP 200, §2.2).
//
// SessionKey is not omitempty on purpose: Android fails a download whose
// session_key is null (§2.1), so a success always sends "".
type UpdateResponse struct {
	Version    string  `json:"version,omitempty"`
	URL        string  `json:"url,omitempty"`
	Checksum   string  `json:"checksum,omitempty"`
	SessionKey *string `json:"session_key,omitempty"`
	// Manifest lists the files of a delta update (§2.6): a plugin that
	// gets it fetches only the files it does not have and ignores URL and
	// Checksum. Never an empty array: leave it out.
	Manifest []ManifestEntry `json:"manifest,omitempty"`
	Link     string          `json:"link,omitempty"`
	Comment  string          `json:"comment,omitempty"`
	Breaking bool            `json:"breaking,omitempty"`

	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Old     string `json:"old,omitempty"`
	Major   bool   `json:"major,omitempty"`
	// DeviceKeyID and BundleKeyID name the two keys of a key_id_mismatch,
	// as Capgo sends them.
	DeviceKeyID string `json:"deviceKeyId,omitempty"`
	BundleKeyID string `json:"bundleKeyId,omitempty"`
}

// ManifestEntry is one file of a delta update (protocol §2.6). FileName is
// the file's path in the bundle, with ".br" added when the bytes at
// DownloadURL are Brotli-compressed; FileHash is the lowercase hex SHA-256
// of the original file (RSA-encrypted, as checksum is, in an encrypted
// release).
type ManifestEntry struct {
	FileName    string `json:"file_name"`
	FileHash    string `json:"file_hash"`
	DownloadURL string `json:"download_url"`
}

// ManifestSizeRequest is the body of POST {updateUrl}/manifest_size
// (protocol §1.6): the device's info object, the version it would
// download and the manifest entries it lacks.
type ManifestSizeRequest struct {
	DeviceInfo
	Version  string          `json:"version"`
	Manifest []ManifestEntry `json:"manifest"`
}

// ManifestSizeFile is one entry of a manifest_size answer: Size is the
// number of bytes the device would download for it, or Error says why it
// is not known ("size_unknown").
type ManifestSizeFile struct {
	FileName    string `json:"file_name"`
	FileHash    string `json:"file_hash"`
	DownloadURL string `json:"download_url"`
	Size        *int64 `json:"size,omitempty"`
	Error       string `json:"error,omitempty"`
}

// ManifestSizeResponse answers manifest_size with Capgo's field names.
type ManifestSizeResponse struct {
	TotalSize    int64              `json:"totalSize"`
	KnownFiles   int                `json:"knownFiles"`
	UnknownFiles int                `json:"unknownFiles"`
	Files        []ManifestSizeFile `json:"files"`
}

// Update answer kinds (protocol §2.2). The plugin treats a missing kind as
// KindFailed, so every refusal must carry one.
const (
	KindUpToDate = "up_to_date"
	KindBlocked  = "blocked"
	KindFailed   = "failed"
)

// VersionBuiltin names the bundle shipped inside the app. A channel pointing
// at it makes devices drop live updates (§8-G).
const VersionBuiltin = "builtin"

// VersionUnknown stands for a bundle version otad does not have, in
// adoption counts and device stories. The plugin reserves the name, so no
// bundle has it.
const VersionUnknown = "unknown"

// Update refusal codes sent in UpdateResponse.Error. Most are Capgo's own
// strings so that apps written against Capgo keep working.
const (
	UpdNoNewVersion             = "no_new_version_available"
	UpdNoChannel                = "no_channel"
	UpdNoBundle                 = "no_bundle"
	UpdMissingInfo              = "missing_info"
	UpdSemverError              = "semver_error"
	UpdUnknownVersionBuild      = "unknown_version_build"
	UpdUnknownApp               = "unknown_app"
	UpdPrivateChannel           = "cannot_update_via_private_channel"
	UpdDisabledPlatformIOS      = "disabled_platform_ios"
	UpdDisabledPlatformAndroid  = "disabled_platform_android"
	UpdDisabledPlatformElectron = "disabled_platform_electron"
	UpdDisableMajor             = "disable_auto_update_to_major"
	UpdDisableMinor             = "disable_auto_update_to_minor"
	UpdDisablePatch             = "disable_auto_update_to_patch"
	UpdDisableMetadata          = "disable_auto_update_to_metadata"
	UpdMisconfiguredChannel     = "misconfigured_channel"
	UpdDisableUnderNative       = "disable_auto_update_under_native"
	UpdDisableProdBuild         = "disable_prod_build"
	UpdDisableDevBuild          = "disable_dev_build"
	UpdDisableDevice            = "disable_device"
	UpdDisableEmulator          = "disable_emulator"
	UpdAlreadyOnBuiltin         = "already_on_builtin"
	// UpdBuiltinTooOld: the channel reverts devices to builtin, which
	// plugins before 6.2.0 cannot do.
	UpdBuiltinTooOld = "revert_to_builtin_plugin_version_too_old"
	UpdKeyIDMismatch = "key_id_mismatch"
	// UpdVersionFailedOnDevice is otad's own: the device already reported
	// that this version failed on it, so it is not offered again (§7.4).
	UpdVersionFailedOnDevice = "version_failed_on_device"
	// UpdIncompatibleNative is otad's own: no bundle of the channel fits the
	// device's native version.
	UpdIncompatibleNative = "incompatible_native_version"
	// UpdBundleNotEncrypted is otad's own: the device has a public key
	// (it sent key_id), so it only installs encrypted bundles, and the
	// bundle it would get is plain (protocol §6).
	UpdBundleNotEncrypted = "bundle_not_encrypted"
	// UpdEncryptionKeyRequired is otad's own: the bundle is encrypted and
	// the device, whose plugin would send key_id if it had a public key,
	// sent none, so it cannot decrypt it.
	UpdEncryptionKeyRequired = "encryption_key_required"
	// UpdBuiltinUnsupported is otad's own: the channel sends devices back to
	// their builtin bundle, which no server answer can ask of
	// @capawesome/capacitor-live-update.
	UpdBuiltinUnsupported = "revert_to_builtin_unsupported"
	// UpdEncryptionUnsupported is otad's own: the bundle is encrypted for
	// @capgo/capacitor-updater, and the device's plugin
	// (@capawesome/capacitor-live-update) cannot decrypt it.
	UpdEncryptionUnsupported = "encryption_unsupported"
)

// StatsEvent is one event posted to /stats (protocol §3.1). The body is an
// object or an array of them.
type StatsEvent struct {
	DeviceInfo
	Action         string            `json:"action"`
	OldVersionName string            `json:"old_version_name,omitempty"`
	Timestamp      int64             `json:"timestamp,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
}

// StatsResponse is the answer to /stats once the events are stored.
type StatsResponse struct {
	Status string `json:"status"`
}

// ChannelSelfResponse is the answer to POST, PUT and DELETE on the channel
// endpoint (§4). Only the fields relevant to the method are set.
type ChannelSelfResponse struct {
	Status   string `json:"status,omitempty"`
	Channel  string `json:"channel,omitempty"`
	AllowSet *bool  `json:"allowSet,omitempty"`
	Unset    bool   `json:"unset,omitempty"`
	Error    string `json:"error,omitempty"`
	Message  string `json:"message,omitempty"`
}

// ChannelListEntry is one element of the bare array GET channel_self returns.
// ID must be a JSON number: Android throws on anything else (§4.4).
type ChannelListEntry struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	Public       bool   `json:"public"`
	AllowSelfSet bool   `json:"allow_self_set"`
}

// Channel self-assignment refusal codes (§4.1).
const (
	ChMissingChannel          = "missing_channel"
	ChNotFound                = "channel_not_found"
	ChSelfSetNotAllowed       = "channel_self_set_not_allowed"
	ChPublicSelfSetNotAllowed = "public_channel_self_set_not_allowed"
	// ChCannotOverride: an admin pinned the device to its channel, and a
	// device cannot change or remove an admin's pin (Capgo's code).
	ChCannotOverride = "cannot_override"
)
