package server

import (
	"net/http"
	"slices"
	"unicode/utf8"

	"github.com/otaship/ota/pkg/ota"
)

// What otad keeps of a device's stats event, field by field. Devices are
// anonymous, so each field is capped to what the updater plugin actually
// sends (protocol.md §1.2 for the device fields, §3.1 and §3.2 for the
// event's own), with room to spare; a longer value is cut, not refused,
// since a refusal would drop the device's whole batch. The device id is
// the exception: it names the device everywhere, so one the plugin could
// not have sent refuses the request (checkDevice).
const (
	capPlatform      = 16  // "ios", "android", "electron" (§1.2)
	capCustomID      = 128 // setCustomId(); "" by default (§1.2)
	capVersion       = ota.MaxVersionLen
	capVersionName   = 512 // a version, or "<version>:<file>" of a manifest failure (§3.1)
	capVersionCode   = 32  // the Android long version code as text, CFBundleVersion (§1.2)
	capVersionOS     = 32  // "17.5", "14" (§1.2)
	capPluginVersion = 64  // "8.51.14", pre-releases included (§1.2)
	capInstallSource = 32  // "app_store" … "huawei_appgallery" (§1.2)
	capKeyID         = 20  // the first 20 characters of the public key (§1.2, §6)
	capAction        = 64  // the longest the plugin sends has 31 (§3.2)
	// Metadata: Capgo's 30 keys of 64 and values of 2048 bytes (§3.1), and
	// otad's own bound on their sum.
	maxStatsMetaKeys    = 30
	maxStatsMetaKeyLen  = 64
	maxStatsMetaValueLn = 2048
	maxStatsMetaBytes   = 4096
	// maxStoredEvent bounds one stored event as JSON: the caps above add
	// up to about 6 KiB; escapes could make it longer, and then the
	// metadata goes.
	maxStoredEvent = 8 << 10
)

// Bounds on what one stats request may carry; the plugin's own queue
// never sends more than 200 events (§3.1).
const maxStatsEvents = 1000

// deviceIDValid reports whether id is a device id the plugin could have
// sent: a lowercase UUID on every current plugin, a 16-hex-digit Android
// id on old ones (§1.2); custom ids of letters, digits and . _ - : are
// accepted too. It does not allocate (the /updates hot path calls it).
func deviceIDValid(id string) bool {
	if id == "" || len(id) > maxDeviceLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isAlnum(c) && (i == 0 || c != '.' && c != '_' && c != '-' && c != ':') {
			return false
		}
	}
	return true
}

// invalidDevice is the refusal of a device id the plugin could not have
// sent.
func invalidDevice(id string) error {
	if id == "" {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidName, "device id is required")
	}
	if len(id) > maxDeviceLen {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidName, "device id is %d characters long; the limit is %d (the updater plugin sends a 36-character UUID)", len(id), maxDeviceLen)
	}
	return newError(http.StatusBadRequest, ota.ErrCodeInvalidName,
		"device id %q is invalid; use letters, digits and . _ - : (starting with a letter or digit)", clip(id))
}

// capField cuts *s to n bytes (at a character boundary) and reports
// whether it did.
func capField(s *string, n int) bool {
	if len(*s) <= n {
		return false
	}
	*s = truncateUTF8(*s, n)
	return true
}

// boundStatsEvent cuts every field of ev to its cap and reports whether
// anything changed (then the bytes as sent are not what is stored).
func boundStatsEvent(ev *ota.StatsEvent) (changed bool) {
	d := &ev.DeviceInfo
	for _, f := range [...]struct {
		s *string
		n int
	}{
		{&d.Platform, capPlatform}, {&d.CustomID, capCustomID}, {&d.VersionBuild, capVersion},
		{&d.VersionCode, capVersionCode}, {&d.VersionOS, capVersionOS}, {&d.VersionName, capVersionName},
		{&d.PluginVersion, capPluginVersion}, {&d.InstallSource, capInstallSource},
		{&d.DefaultChannel, ota.MaxChannelLen}, {&d.KeyID, capKeyID}, {&d.Channel, ota.MaxChannelLen},
		{&ev.Action, capAction}, {&ev.OldVersionName, capVersion},
	} {
		if capField(f.s, f.n) {
			changed = true
		}
	}
	if !metadataInBounds(ev.Metadata) {
		ev.Metadata, changed = boundMetadata(ev.Metadata), true
	}
	if eventJSONLen(ev) > maxStoredEvent {
		ev.Metadata, changed = nil, true
	}
	return changed
}

// metadataInBounds reports whether boundMetadata would return m as it is.
func metadataInBounds(m map[string]string) bool {
	if m == nil {
		return true
	}
	if len(m) == 0 || len(m) > maxStatsMetaKeys {
		return false
	}
	total := 0
	for k, v := range m {
		if len(k) > maxStatsMetaKeyLen || len(v) > maxStatsMetaValueLn {
			return false
		}
		total += len(k) + len(v)
	}
	return total <= maxStatsMetaBytes
}

// boundMetadata keeps at most maxStatsMetaKeys entries (the first in key
// order) of at most maxStatsMetaBytes together, drops over-long keys and
// cuts over-long values, instead of refusing the event: a refusal would
// lose the whole batch.
func boundMetadata(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	if metadataInBounds(m) {
		return m
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if len(k) <= maxStatsMetaKeyLen {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > maxStatsMetaKeys {
		keys = keys[:maxStatsMetaKeys]
	}
	out := make(map[string]string, len(keys))
	left := maxStatsMetaBytes
	for _, k := range keys {
		if left < len(k) {
			break
		}
		v := truncateUTF8(m[k], min(maxStatsMetaValueLn, left-len(k)))
		out[k] = v
		left -= len(k) + len(v)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// eventJSONLen is an upper bound of the length of ev as encoding/json
// writes it (the store's encoding of an event it was not handed the
// bytes of): every field's escaped length and its key.
func eventJSONLen(ev *ota.StatsEvent) int {
	d := &ev.DeviceInfo
	n := 400 // keys, quotes, commas, booleans and the timestamp
	for _, s := range [...]string{d.Platform, d.DeviceID, d.AppID, d.CustomID, d.VersionBuild, d.VersionCode,
		d.VersionOS, d.VersionName, d.PluginVersion, d.InstallSource, d.DefaultChannel, d.KeyID, d.Channel,
		ev.Action, ev.OldVersionName} {
		n += jsonStringLen(s)
	}
	for k, v := range ev.Metadata {
		n += jsonStringLen(k) + jsonStringLen(v) + 2
	}
	return n
}

// jsonStringLen is the length of s as a JSON string the way encoding/json
// escapes it (control characters, <, > and & as \u00XX, invalid bytes
// as \ufffd, U+2028 and U+2029 escaped), quotes included.
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}
