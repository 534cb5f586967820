package update

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/otaship/ota/pkg/ota"
)

// How a device's channel was chosen (protocol §8-C), in Decision.Source.
const (
	// SourceOverride: a server-side device override (admin-assigned, or
	// stored by a legacy plugin's setChannel).
	SourceOverride = "override"
	// SourceDevice: the channel the device named in defaultChannel (or, in
	// the old worker's minimal body, channel).
	SourceDevice = "device"
	// SourceDefault: the app's public default channel.
	SourceDefault = "default"
)

// Plugin is the updater plugin an update check comes from. The release
// rules (channel, rollout cohort, native range, failure memory, channel
// policies) are the same for every plugin; what differs is what a plugin
// can be sent.
type Plugin uint8

const (
	// PluginCapgo is @capgo/capacitor-updater, which /updates serves.
	PluginCapgo Plugin = iota
	// PluginCapawesome is @capawesome/capacitor-live-update
	// (internal/capawesome, docs/protocol-capawesome.md). It cannot decrypt
	// Capgo's encrypted bundles, and no server answer sends it back to its
	// builtin bundle.
	PluginCapawesome
)

// Decision is the answer to one update check and what led to it.
type Decision struct {
	// Response is the body to send, always with HTTP 200.
	Response ota.UpdateResponse
	// AppID is the app the request was decided for ("" when the request
	// did not get that far). Channel is the channel it resolved to, "" when
	// none; Source says how Channel was chosen.
	AppID, Channel, Source string
	// Steps is a human-readable trace of the decision, filled only by
	// Explain.
	Steps []string
	// Body is Response as JSON the way echo's c.JSON writes it (with a
	// final newline), prepared with the snapshot; nil when the answer is
	// not a prepared offer. It is shared: nobody may modify it.
	Body []byte
	// Bundle is the bundle Response offers, nil when it offers none.
	// Shared: nobody may modify it.
	Bundle *ota.Bundle
	// URLRenew is when Response.URL, prepared with the snapshot, must stop
	// being handed out (a presigned URL, see download.Link); zero: never.
	// Past it the caller asks for a fresh link for Bundle.
	URLRenew time.Time
	// Gzip is Body gzip-compressed, prepared with the snapshot for
	// answers big enough to gain from it (delta releases' manifests); nil
	// otherwise. Shared like Body.
	Gzip []byte
}

// Decide answers an update check (protocol §8, in order: request sanity,
// app, channel, builtin target, same version, otad's safety rules (staged
// rollout cohort, failure memory, native range, falling back to earlier
// releases), channel policies, success).
// defaultApp is the app meant by requests without app_id. It records no
// trace, and a success allocates nothing: it copies the channel's prepared
// answer.
func Decide(s *Snapshot, req *ota.UpdateRequest, defaultApp string) Decision {
	return decide(s, req, defaultApp, nil, PluginCapgo, nil)
}

// DecideWith is Decide that also keeps versions from devices that reported
// them failing (mem may be nil).
func DecideWith(s *Snapshot, req *ota.UpdateRequest, defaultApp string, mem FailureMemory) Decision {
	return decide(s, req, defaultApp, mem, PluginCapgo, nil)
}

// DecideFor is DecideWith for a check that plugin p sent, its query put in
// the updater plugin's terms (version_build the native version,
// version_name the running bundle, defaultChannel the channel it names).
func DecideFor(s *Snapshot, p Plugin, req *ota.UpdateRequest, defaultApp string, mem FailureMemory) Decision {
	return decide(s, req, defaultApp, mem, p, nil)
}

// Explain is Decide with a step-by-step trace in Decision.Steps, for
// operators asking why a device gets what it gets.
func Explain(s *Snapshot, req *ota.UpdateRequest, defaultApp string) Decision {
	return ExplainWith(s, req, defaultApp, nil)
}

// ExplainWith is Explain with the failure memory DecideWith uses.
func ExplainWith(s *Snapshot, req *ota.UpdateRequest, defaultApp string, mem FailureMemory) Decision {
	return ExplainFor(s, PluginCapgo, req, defaultApp, mem)
}

// ExplainFor is ExplainWith for a check that plugin p sent (see DecideFor).
func ExplainFor(s *Snapshot, p Plugin, req *ota.UpdateRequest, defaultApp string, mem FailureMemory) Decision {
	tr := &tracer{}
	d := decide(s, req, defaultApp, mem, p, tr)
	d.Steps = tr.steps
	return d
}

// tracer collects Explain's steps. Every call site is guarded by a nil
// check so that Decide never boxes the arguments.
type tracer struct{ steps []string }

func (t *tracer) add(format string, args ...any) {
	t.steps = append(t.steps, fmt.Sprintf(format, args...))
}

// KindOf classifies a refusal code the way the plugin expects (§2.2):
// "no update" codes are up_to_date, policy refusals are blocked, and
// everything else is failed.
func KindOf(code string) string {
	switch code {
	case ota.UpdNoNewVersion, ota.UpdAlreadyOnBuiltin:
		return ota.KindUpToDate
	case ota.UpdPrivateChannel,
		ota.UpdDisabledPlatformIOS, ota.UpdDisabledPlatformAndroid, ota.UpdDisabledPlatformElectron,
		ota.UpdDisableMajor, ota.UpdDisableMinor, ota.UpdDisablePatch, ota.UpdDisableMetadata,
		ota.UpdDisableUnderNative, ota.UpdDisableProdBuild, ota.UpdDisableDevBuild,
		ota.UpdDisableDevice, ota.UpdDisableEmulator, ota.UpdKeyIDMismatch,
		ota.UpdVersionFailedOnDevice, ota.UpdIncompatibleNative,
		ota.UpdBundleNotEncrypted, ota.UpdEncryptionKeyRequired,
		ota.UpdBuiltinUnsupported, ota.UpdEncryptionUnsupported:
		return ota.KindBlocked
	}
	return ota.KindFailed
}

// Refusal messages. Most are Capgo's, so apps that show them keep working.
const (
	msgNoNewVersion  = "No new version available"
	msgNoChannel     = "no default channel or override"
	msgNoBundle      = "Cannot get bundle"
	msgMissingInfo   = "Cannot find device_id or app_id"
	msgUnknownBuild  = "Native version_build is unknown; set the plugin's version option or the app's version name"
	msgDisableMajor  = "Cannot upgrade major version"
	msgDisableMinor  = "Cannot upgrade minor version"
	msgDisablePatch  = "Cannot upgrade patch version"
	msgDisableMeta   = "Cannot upgrade version, min update version > current version"
	msgUnderNative   = "Cannot revert under native version"
	msgDisableProd   = "Cannot update, prod build is disabled"
	msgDisableDev    = "Cannot update, dev build is disabled"
	msgDisableDevice = "Cannot update, device is disabled"
	msgDisableEmu    = "Cannot update, emulator is disabled"
)

func refusal(code, msg string) ota.UpdateResponse {
	return ota.UpdateResponse{Error: code, Message: msg, Kind: KindOf(code)}
}

func decide(s *Snapshot, req *ota.UpdateRequest, defaultApp string, mem FailureMemory, p Plugin, tr *tracer) Decision {
	var d Decision
	// The old worker's /check body carried only version_build and channel.
	// Such a body has no device identity to check; its version_build is
	// what the old scripts compared.
	minimal := req.DeviceID == "" && req.Platform == "" && req.VersionName == ""
	build := req.VersionBuild
	// The builtin bundle reports its version as version_build (§1.3).
	name := req.VersionName
	if name == "" || name == ota.VersionBuiltin {
		name = build
	}
	d.AppID = req.AppID
	if d.AppID == "" {
		d.AppID = defaultApp
		if tr != nil {
			tr.add("request has no app_id: using the default app %q", defaultApp)
		}
	}
	if tr != nil {
		tr.add("device %q on %s, native %q, running bundle %q, plugin %q", req.DeviceID, req.Platform, build, name, req.PluginVersion)
		if minimal {
			tr.add("minimal body of the old /check: no device identity, version_build is compared as the running version")
		}
	}

	// B. Request sanity.
	if build == "" || d.AppID == "" || (!minimal && (req.DeviceID == "" || req.Platform == "")) {
		if tr != nil {
			tr.add("refused: app_id, device_id, platform or version_build is empty")
		}
		d.Response = refusal(ota.UpdMissingInfo, msgMissingInfo)
		return d
	}
	if build == "unknown" {
		if tr != nil {
			tr.add("refused: version_build is %q", build)
		}
		d.Response = refusal(ota.UpdUnknownVersionBuild, msgUnknownBuild)
		return d
	}
	native, err := CoerceNative(build)
	if err != nil {
		if tr != nil {
			tr.add("refused: native version %q is not semver even after coercion", build)
		}
		d.Response = refusal(ota.UpdSemverError, fmt.Sprintf(
			"Native version: %s doesn't follow semver convention, please check https://capgo.app/semver_tester/ to learn how to name it", clip(build)))
		return d
	}

	// A. App.
	app := s.App(d.AppID)
	if app == nil {
		if tr != nil {
			tr.add("refused: app %q is not known to this server", d.AppID)
		}
		d.Response = refusal(ota.UpdUnknownApp, fmt.Sprintf("App %s is not known to this server; publish a bundle for it first", clip(d.AppID)))
		return d
	}

	// C. Channel.
	requested := req.DefaultChannel
	if requested == "" && req.Channel != "" {
		requested = req.Channel
		if tr != nil {
			tr.add("no defaultChannel: using the body's channel %q", requested)
		}
	}
	deviceID := strings.ToLower(req.DeviceID)
	cv, source := app.resolve(deviceID, req.Platform, requested, tr)
	if cv == nil {
		d.Response = refusal(ota.UpdNoChannel, noChannelMessage(app, requested))
		return d
	}
	d.Channel, d.Source = cv.Channel.Name, source

	// G. Builtin target.
	if cv.Builtin {
		d.Response = builtinAnswer(cv, req, name, build, p, tr)
		return d
	}
	// D. Bundle.
	if cv.Active == nil {
		if tr != nil {
			tr.add("refused: channel %q has no active bundle", cv.Channel.Name)
		}
		d.Response = refusal(ota.UpdNoBundle, msgNoBundle)
		return d
	}
	target := cv.Active.Version
	// E. Same version: exact string compare, so a rollback to an older
	// version is served. A device that already runs a staged version keeps
	// it: cohorts are sticky.
	if name == target {
		if tr != nil {
			tr.add("device already runs %q, the active bundle of %q", target, cv.Channel.Name)
		}
		d.Response = refusal(ota.UpdNoNewVersion, msgNoNewVersion)
		return d
	}
	if tr != nil {
		tr.add("channel %q offers %q", cv.Channel.Name, target)
	}

	// otad's safety rules: the staged rollout's cohort, the device's own
	// failure reports, and the bundle's native range pick the newest offer
	// the device may have.
	o, why, failed := pick(cv, d.AppID, deviceID, native, mem, tr)
	switch {
	case o == nil && why == ota.UpdVersionFailedOnDevice:
		// The channel's own policies come first, as they would for the
		// target.
		if r, ok := checkPolicies(cv, &cv.active, req, source, name, native, tr); !ok {
			d.Response = r
			return d
		}
		if tr != nil {
			tr.add("refused: every bundle the device may have failed on it")
		}
		r := refusal(ota.UpdVersionFailedOnDevice, fmt.Sprintf(
			"Version %s failed on this device before and the channel has no other bundle for it", failed))
		r.Version, r.Old = failed, name
		d.Response = r
		return d
	case o == nil && why == ota.UpdIncompatibleNative:
		// checkPolicies ends with the native range, so it refuses with the
		// channel's policy or incompatible_native_version.
		r, ok := checkPolicies(cv, &cv.active, req, source, name, native, tr)
		if ok { // the target fits, but the device may only have fallbacks, and none fits
			r = refusal(ota.UpdIncompatibleNative, "No bundle of the channel fits this native version")
		}
		d.Response = r
		return d
	case o == nil:
		if tr != nil {
			tr.add("nothing to offer: the channel served no bundle before this rollout")
		}
		d.Response = refusal(ota.UpdNoNewVersion, msgNoNewVersion)
		return d
	case o.builtin:
		d.Response = builtinAnswer(cv, req, name, build, p, tr)
		return d
	case o.version == name:
		if tr != nil {
			tr.add("device already runs %q, the bundle it may have", name)
		}
		d.Response = refusal(ota.UpdNoNewVersion, msgNoNewVersion)
		return d
	}
	if tr != nil {
		tr.add("checking the policies of channel %q for %q", cv.Channel.Name, o.version)
	}

	// F. Policies.
	if r, ok := checkPolicies(cv, o, req, source, name, native, tr); !ok {
		d.Response = r
		return d
	}
	// The offer's bytes must be what the device can open (§6).
	if r, ok := checkEncryption(o, req, name, p, tr); !ok {
		d.Response = r
		return d
	}
	if tr != nil {
		tr.add("offer %q from %s (sha256 %s)", o.version, o.success.URL, o.success.Checksum)
	}
	d.Response = o.success
	d.Body = o.body
	d.Bundle, d.URLRenew = o.bundle, o.renew
	// Delta releases' manifests are the Capgo plugin's (protocol §2.6);
	// the Capawesome routes serve files their own way, from d.Bundle.
	if o.delta != nil && p == PluginCapgo {
		if SupportsManifest(req.PluginVersion) {
			a := &o.delta[ManifestFor(req.Platform)]
			d.Response, d.Body, d.Gzip, d.URLRenew = a.resp, a.body, a.gzip, a.renew
			if tr != nil {
				tr.add("offer %q as a delta release: %d files, the %s manifest (the zip %s stays in url)",
					o.version, len(a.resp.Manifest), platformName(ManifestFor(req.Platform)), o.success.URL)
			}
			return d
		}
		if tr != nil {
			tr.add("%q is a delta release, but plugin %q cannot install manifests (5.10.0, 6.25.0, 7.0.38 or later): offering the zip", o.version, req.PluginVersion)
		}
	}
	return d
}

// builtinAnswer sends a device back to its builtin bundle (§8-G). The plugin
// resets on a bare {"version":"builtin"} (§2.3 step 3), which a v8 device
// does not do for already_on_builtin. No answer resets a Capawesome
// device (docs/protocol-capawesome.md §3.4): it is refused, and keeps
// what it runs.
func builtinAnswer(cv *ChannelView, req *ota.UpdateRequest, name, build string, p Plugin, tr *tracer) ota.UpdateResponse {
	if p == PluginCapawesome && name != build {
		if tr != nil {
			tr.add("channel %q points at builtin, which @capawesome/capacitor-live-update cannot be sent back to: the device keeps %q", cv.Channel.Name, name)
		}
		r := refusal(ota.UpdBuiltinUnsupported, fmt.Sprintf(
			"Channel %s sends devices back to their builtin bundle, which no server answer can ask of @capawesome/capacitor-live-update; the device keeps bundle %s (LiveUpdate.reset() in the app goes back)",
			cv.Channel.Name, clip(name)))
		r.Version, r.Old = ota.VersionBuiltin, clip(name)
		return r
	}
	if name != build && !canRevertToBuiltin(req.PluginVersion) {
		if tr != nil {
			tr.add("channel %q points at builtin, but plugin %q is older than 6.2.0 and cannot revert", cv.Channel.Name, req.PluginVersion)
		}
		return refusal(ota.UpdBuiltinTooOld, "Cannot revert to builtin: plugin "+clip(req.PluginVersion)+" is older than 6.2.0")
	}
	if name != build {
		if tr != nil {
			tr.add("channel %q sends the device back to builtin from bundle %q", cv.Channel.Name, name)
		}
		return ota.UpdateResponse{Version: ota.VersionBuiltin}
	}
	if tr != nil {
		tr.add("channel %q points at builtin and the device already runs it", cv.Channel.Name)
	}
	return refusal(ota.UpdNoNewVersion, msgNoNewVersion)
}

// pick chooses the newest offer of the channel the device may have: the
// active bundle when the device is in the rollout's cohort, else the
// fallbacks; skipping versions that failed on the device and bundles
// built for other native versions. With none, why is the first reason an
// offer was skipped: ota.UpdVersionFailedOnDevice, ota.UpdIncompatibleNative,
// or "" when there was nothing to offer; failed is the version skipped
// first.
func pick(cv *ChannelView, appID, deviceID string, native Version, mem FailureMemory, tr *tracer) (o *offer, why, failed string) {
	candidates := cv.fallbackOffers()
	first := &cv.active
	if cv.Staged {
		r := cv.Channel.Rollout
		in := !r.Paused && !r.Halted && InCohort(deviceID, cv.cohortKey, r.Percent)
		if tr != nil {
			switch {
			case r.Halted:
				tr.add("rollout of %q is halted (%s): devices that do not run it keep %q", r.Target, r.Reason, orNothing(r.Previous))
			case r.Paused:
				tr.add("rollout of %q is paused at %d%%: devices that do not run it keep %q", r.Target, r.Percent, orNothing(r.Previous))
			case in:
				tr.add("device is in the %d%% cohort of the rollout of %q (bucket %d of 10000)", r.Percent, r.Target, CohortBucket(deviceID, cv.cohortKey))
			default:
				tr.add("device is outside the %d%% cohort of the rollout of %q (bucket %d of 10000): it keeps %q",
					r.Percent, r.Target, CohortBucket(deviceID, cv.cohortKey), orNothing(r.Previous))
			}
		}
		if !in {
			first = nil
		}
	}
	try := func(o *offer) bool {
		if !o.builtin && mem != nil && mem.FailedOn(appID, o.version, deviceID) {
			if tr != nil {
				tr.add("the device reported that %q failed on it: not offered again", o.version)
			}
			if why == "" {
				why, failed = ota.UpdVersionFailedOnDevice, o.version
			}
			return false
		}
		if !o.fitsNative(native) {
			if tr != nil {
				tr.add("%q is built for native versions %s to %s: not for this device", o.version, orAny(o.bundle.MinNative), orAny(o.bundle.MaxNative))
			}
			if why == "" {
				why, failed = ota.UpdIncompatibleNative, o.version
			}
			return false
		}
		return true
	}
	if first != nil && try(first) {
		return first, "", ""
	}
	for _, fb := range candidates {
		if try(fb) {
			if tr != nil {
				tr.add("falling back to %q, an earlier release of %q", fb.version, cv.Channel.Name)
			}
			return fb, "", ""
		}
	}
	return nil, why, failed
}

func orNothing(v string) string {
	if v == "" {
		return "nothing"
	}
	return v
}

// FailureMemory tells whether a device reported that a version failed on
// it (update_fail, set_fail, checksum_fail, unzip_fail), so that it is
// not offered that version again (protocol §7.4). deviceID is lowercase.
// Implementations must be safe for concurrent use and must not block.
type FailureMemory interface {
	FailedOn(appID, version, deviceID string) bool
}

// CohortBucket places a device in one of 10000 buckets for a bundle: the
// first 8 bytes of sha256(device_id NUL key), where key is the bundle's
// SHA-256 (or its version). The bucket depends on nothing else, so a
// device keeps it while the rollout grows.
func CohortBucket(deviceID, key string) uint64 {
	var buf [256]byte
	b := append(buf[:0], deviceID...)
	b = append(b, 0)
	b = append(b, key...)
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint64(sum[:8]) % 10000
}

// InCohort reports whether a device is among the percent of devices a
// rollout of the bundle keyed by key reaches. Raising percent only adds
// devices.
func InCohort(deviceID, key string, percent int) bool {
	return CohortBucket(deviceID, key) < uint64(percent)*100
}

// checkPolicies applies a channel's rules in Capgo's order (§8-F), then
// the bundle's native bounds. ok is false with the refusal to send.
func checkPolicies(cv *ChannelView, o *offer, req *ota.UpdateRequest, source, name string, native Version, tr *tracer) (ota.UpdateResponse, bool) {
	p := &cv.Channel.Policy
	target := o.version
	build := req.VersionBuild
	blocked := func(code, msg, old string, major bool) (ota.UpdateResponse, bool) {
		if tr != nil {
			tr.add("refused by the channel policy: %s", code)
		}
		r := refusal(code, msg)
		r.Version, r.Old, r.Major = target, old, major
		return r, false
	}

	switch req.Platform {
	case "ios":
		if !p.IOS {
			return blocked(ota.UpdDisabledPlatformIOS, "Cannot update, ios it's disabled", name, false)
		}
	case "android":
		if !p.Android {
			return blocked(ota.UpdDisabledPlatformAndroid, "Cannot update, android is disabled", name, false)
		}
	case "electron":
		if !p.Electron {
			return blocked(ota.UpdDisabledPlatformElectron, "Cannot update, electron is disabled", name, false)
		}
	}
	t := o.target
	// The semver rules compare the target with the native version, not with
	// the running bundle; a target that is not semver skips them.
	if p.DisableAutoUpdate == ota.DisableMajor && o.targetOK && t.Major > native.Major {
		return blocked(ota.UpdDisableMajor, msgDisableMajor, build, true)
	}
	if !cv.Channel.Public && !p.AllowSelfSet && source != SourceOverride {
		if tr != nil {
			tr.add("refused: channel %q is private and the device has no override", cv.Channel.Name)
		}
		r := refusal(ota.UpdPrivateChannel, fmt.Sprintf(
			"Cannot update via private channel %s; it is neither public nor self-settable (defaultChannel %q)", cv.Channel.Name, req.DefaultChannel))
		return r, false
	}
	switch p.DisableAutoUpdate {
	case ota.DisableMinor:
		if o.targetOK && (t.Major != native.Major || t.Minor != native.Minor) {
			return blocked(ota.UpdDisableMinor, msgDisableMinor, build, true)
		}
	case ota.DisablePatch:
		if o.targetOK && (t.Major != native.Major || t.Minor != native.Minor || t.Patch != native.Patch) {
			return blocked(ota.UpdDisablePatch, msgDisablePatch, build, true)
		}
	case ota.DisableVersionNumber:
		if !o.minNativeOK {
			if tr != nil {
				tr.add("refused: the channel needs a minimum native version on bundle %q and it has none (or not semver)", target)
			}
			return refusal(ota.UpdMisconfiguredChannel, fmt.Sprintf("Channel %s is misconfigured", cv.Channel.Name)), false
		}
		if o.minNative.Compare(native) > 0 {
			return blocked(ota.UpdDisableMetadata, msgDisableMeta, build, true)
		}
	}
	if p.DisableAutoUpdateUnderNative && o.targetOK && t.Compare(native) < 0 {
		return blocked(ota.UpdDisableUnderNative, msgUnderNative, name, false)
	}
	prod, emulator := req.Prod(), req.Emulator()
	if !p.AllowProd && prod {
		return blocked(ota.UpdDisableProdBuild, msgDisableProd, "", false)
	}
	if !p.AllowDev && !prod {
		return blocked(ota.UpdDisableDevBuild, msgDisableDev, "", false)
	}
	if !p.AllowDevice && !emulator {
		return blocked(ota.UpdDisableDevice, msgDisableDevice, "", false)
	}
	if !p.AllowEmulator && emulator {
		return blocked(ota.UpdDisableEmulator, msgDisableEmu, "", false)
	}
	// otad's own rule: a bundle built for a range of native versions is
	// not offered outside it. A bound that is not semver refuses, since the
	// operator's intent cannot be checked.
	if o.minNativeBad || o.maxNativeBad ||
		(o.minNativeOK && native.Compare(o.minNative) < 0) ||
		(o.maxNativeOK && native.Compare(o.maxNative) > 0) {
		return blocked(ota.UpdIncompatibleNative, fmt.Sprintf(
			"Bundle %s is built for native versions %s to %s; this device runs %s",
			target, orAny(o.bundle.MinNative), orAny(o.bundle.MaxNative), build), build, false)
	}
	return ota.UpdateResponse{}, true
}

// checkEncryption refuses an offer the device cannot install because of
// encryption (protocol §6). A device configured with a public key sends
// key_id and installs encrypted bundles only (iOS demands an encrypted
// checksum); a device without one cannot decrypt. ok is false with the
// refusal to send. Plain offers to devices without a key return at once.
//
// A device without key_id still gets an encrypted bundle when its plugin
// predates key_id (before 8.2.0, or 5/6/7 before .50): such a device may
// well have the key, and Capgo serves it too. Only a plugin that would
// have sent key_id is known to lack the key; it is refused with
// encryption_key_required rather than sent bytes whose checksum must fail.
//
// A Capawesome device decrypts nothing: an encrypted bundle is refused.
func checkEncryption(o *offer, req *ota.UpdateRequest, name string, p Plugin, tr *tracer) (ota.UpdateResponse, bool) {
	enc := o.bundle.Encryption
	if enc == nil && (req.KeyID == "" || p == PluginCapawesome) {
		return ota.UpdateResponse{}, true
	}
	refuse := func(code, msg string) (ota.UpdateResponse, bool) {
		if tr != nil {
			tr.add("refused: %s", msg)
		}
		r := refusal(code, msg)
		r.Version, r.Old = o.version, name
		return r, false
	}
	switch {
	case p == PluginCapawesome:
		return refuse(ota.UpdEncryptionUnsupported, fmt.Sprintf(
			"Bundle %s is encrypted for @capgo/capacitor-updater, which @capawesome/capacitor-live-update cannot decrypt; deploy it unencrypted (signed with otactl deploy web --sign-key)",
			o.version))
	case enc == nil:
		return refuse(ota.UpdBundleNotEncrypted, fmt.Sprintf(
			"Bundle %s is not encrypted, but this device has a public key (key_id %s) and only installs encrypted bundles; deploy with otactl deploy web --encrypt-key",
			o.version, clip(req.KeyID)))
	case req.KeyID == "":
		if !sendsKeyID(req.PluginVersion) {
			if tr != nil {
				tr.add("bundle %q is encrypted (key id %s); plugin %q predates key_id, so it may have the key", o.version, enc.KeyID, req.PluginVersion)
			}
			return ota.UpdateResponse{}, true
		}
		return refuse(ota.UpdEncryptionKeyRequired, fmt.Sprintf(
			"Bundle %s is encrypted (key id %s), but this device has no public key (it sent no key_id) and cannot decrypt it; set publicKey in the CapacitorUpdater config, or deploy without --encrypt-key",
			o.version, enc.KeyID))
	case !sameKeyID(req.KeyID, enc.KeyID):
		if tr != nil {
			tr.add("refused: the device's key id %s differs from the bundle's %s", req.KeyID, enc.KeyID)
		}
		r := refusal(ota.UpdKeyIDMismatch,
			"Device encryption key does not match bundle encryption key. Deploy the bundle encrypted with the private key of the app's publicKey.")
		r.DeviceKeyID, r.BundleKeyID = clip(req.KeyID), enc.KeyID
		return r, false
	}
	if tr != nil {
		tr.add("bundle %q is encrypted with the device's key (key id %s)", o.version, enc.KeyID)
	}
	return ota.UpdateResponse{}, true
}

// sameKeyID compares key ids that may be cut short: plugins before 8.40.7
// send the first 4 characters rather than 20. A bundle without a key id
// matches any key.
func sameKeyID(device, bundle string) bool {
	if bundle == "" {
		return true
	}
	if len(device) < len(bundle) {
		return strings.HasPrefix(bundle, device)
	}
	return strings.HasPrefix(device, bundle)
}

// sendsKeyID reports whether a plugin of this version sends key_id when
// it has a public key: 8.2.0 and later, and the 5, 6 and 7 back-ports
// from x.50.0 (protocol §1.3). An unreadable version is given the benefit
// of the doubt: it may have the key.
func sendsKeyID(pluginVersion string) bool {
	v, err := CoerceNative(pluginVersion)
	if err != nil || pluginVersion == "" {
		return false
	}
	switch {
	case v.Major >= 9:
		return true
	case v.Major == 8:
		return v.Minor >= 2
	case v.Major >= 5:
		return v.Minor >= 50
	}
	return false
}

func orAny(s string) string {
	if s == "" {
		return "any"
	}
	return s
}

// noChannelMessage is the message of a no_channel refusal: Capgo's words,
// then why resolve found none, so the answer says what the trace of otactl
// explain says.
func noChannelMessage(a *AppView, requested string) string {
	switch {
	case requested == "":
		return fmt.Sprintf("%s: app %s has no public channel", msgNoChannel, a.App.ID)
	case a.Channels[requested] == nil:
		return fmt.Sprintf("%s: channel %q does not exist", msgNoChannel, clip(requested))
	}
	return fmt.Sprintf("%s: channel %q is neither public nor self-settable", msgNoChannel, requested)
}

// Resolve picks the channel a device is served from (§8-C): its override,
// else the channel it asks for (requested, its defaultChannel) when that is
// public or self-settable, else the app's public default. There is no
// fallback from a bad requested channel to the default: cv is nil then.
// deviceID must be lowercase.
func (a *AppView) Resolve(deviceID, platform, requested string) (cv *ChannelView, source string) {
	return a.resolve(deviceID, platform, requested, nil)
}

func (a *AppView) resolve(deviceID, platform, requested string, tr *tracer) (*ChannelView, string) {
	if a == nil {
		return nil, ""
	}
	if name, ok := a.Overrides[deviceID]; ok && deviceID != "" {
		if cv := a.Channels[name]; cv != nil {
			if tr != nil {
				tr.add("device override: channel %q", name)
			}
			return cv, SourceOverride
		}
		// A dangling override must not cut the device off; it is ignored.
		if tr != nil {
			tr.add("device override names channel %q, which does not exist (or is not a web channel): ignored", name)
		}
	}
	if requested != "" {
		cv := a.Channels[requested]
		switch {
		case cv == nil:
			if tr != nil {
				tr.add("refused: the requested channel %q does not exist", requested)
			}
			return nil, ""
		case !cv.Channel.Public && !cv.Channel.Policy.AllowSelfSet:
			if tr != nil {
				tr.add("refused: the requested channel %q is neither public nor self-settable", requested)
			}
			return nil, ""
		}
		if tr != nil {
			tr.add("channel %q, requested by the device", requested)
		}
		return cv, SourceDevice
	}
	cv := a.DefaultFor(platform)
	if cv == nil {
		if tr != nil {
			tr.add("refused: app %q has no public channel", a.App.ID)
		}
		return nil, ""
	}
	if tr != nil {
		tr.add("channel %q, the app's public default", cv.Channel.Name)
	}
	return cv, SourceDefault
}

// DefaultFor returns the public channel a device of the platform gets when
// it names none: the app's default channel when it is public and enabled
// for the platform, else the first (by name) public channel enabled for
// it, else the app's public default channel even though the platform is
// disabled there, so the device learns why (disabled_platform_*).
func (a *AppView) DefaultFor(platform string) *ChannelView {
	if a == nil {
		return nil
	}
	def := a.Channels[a.App.DefaultChannel]
	if def != nil && !def.Channel.Public {
		def = nil
	}
	if def != nil && PlatformEnabled(&def.Channel.Policy, platform) {
		return def
	}
	var best *ChannelView
	for _, cv := range a.List {
		if cv.Channel.Public && PlatformEnabled(&cv.Channel.Policy, platform) &&
			(best == nil || cv.Channel.Name < best.Channel.Name) {
			best = cv
		}
	}
	if best != nil {
		return best
	}
	if def != nil {
		return def
	}
	for _, cv := range a.List {
		if cv.Channel.Public && (best == nil || cv.Channel.Name < best.Channel.Name) {
			best = cv
		}
	}
	return best
}

// PlatformEnabled reports whether the policy serves the platform. Unknown
// platforms have no switch and are served.
func PlatformEnabled(p *ota.ChannelPolicy, platform string) bool {
	switch platform {
	case "ios":
		return p.IOS
	case "android":
		return p.Android
	case "electron":
		return p.Electron
	}
	return true
}

// EventVersion is the bundle version a stats event is about. File-level
// manifest failures name "<version>:<file>"; the version is the part
// before the colon.
func EventVersion(versionName string) string {
	v, _, _ := strings.Cut(versionName, ":")
	return v
}

// canRevertToBuiltin reports whether the plugin resets on a builtin target:
// 6.2.0 and later. An unreadable version is given the benefit of the doubt.
func canRevertToBuiltin(pluginVersion string) bool {
	v, err := CoerceNative(pluginVersion)
	if err != nil || pluginVersion == "" {
		return true
	}
	return v.Compare(Version{Major: 6, Minor: 2}) >= 0
}

// clip shortens a device-supplied string echoed in a message, so a
// crafted request cannot make the answer large.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	for i := max; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}

// Running names the bundle a device checking with req runs, in the
// snapshot's own strings (so remembering it holds no request memory): a
// bundle version of the app, ota.VersionBuiltin for the bundle shipped in
// the app, or ota.VersionUnknown for a version the app does not have (a
// deleted bundle, or anything a client makes up).
func (a *AppView) Running(req *ota.UpdateRequest) string {
	name := req.VersionName
	if name == "" || name == ota.VersionBuiltin {
		return ota.VersionBuiltin
	}
	if b := a.Bundles[name]; b != nil {
		return b.Version
	}
	if name == req.VersionBuild {
		return ota.VersionBuiltin // the builtin bundle reports version_build (§1.3)
	}
	return ota.VersionUnknown
}
