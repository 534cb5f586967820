package capawesome

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/otaship/ota/pkg/ota"
)

// The plugin's query strings (docs/protocol-capawesome.md §3.1). Android
// builds them with OkHttp, which writes an unset value as a bare key
// ("&bundleId&channelName") and escapes '+' as %2B and ' ' as %20; iOS
// builds them with URLComponents, which leaves unset keys out, orders the
// rest as a dictionary does (in no fixed order) and leaves '+' as it is.
// So a value is percent-decoded with '+' kept literally (never a space, as
// a form would have it), and a bare key means the same as an absent one.

// Bounds on what one query may carry. The plugin's values are short
// (versions, a UUID, a channel name); a custom id is the app's choice.
const (
	maxQueryLen = 8 << 10
	maxValueLen = 512
	maxDeviceID = 128
)

// Platforms as the plugin sends them.
const (
	platformAndroid = "0"
	platformIOS     = "1"
)

// Query is a latest-bundle check as the plugin sends it. An unset value is
// "".
type Query struct {
	AppVersionCode string // versionCode / CFBundleVersion
	AppVersionName string // versionName / CFBundleShortVersionString: the native version
	BundleID       string // the running bundle; "" on the built-in one
	ChannelName    string // the device's channel; "" when it has none
	CustomID       string
	DeviceID       string
	OSVersion      string // Android SDK_INT, iOS systemVersion
	Platform       string // "0" Android, "1" iOS
	PluginVersion  string
}

// QueryError is a query the plugin would not send; it is answered 400.
type QueryError struct{ Msg string }

func (e *QueryError) Error() string { return e.Msg }

func queryErrorf(format string, args ...any) *QueryError {
	return &QueryError{Msg: fmt.Sprintf(format, args...)}
}

// ParseQuery reads the raw query of a latest-bundle check. header is the
// X-Capawesome-Device-Id header, used when the query names no device (both
// carry the same id; the query wins when they differ). Unknown keys are
// ignored: later plugin versions may add some.
func ParseQuery(raw, header string) (Query, error) {
	var q Query
	if len(raw) > maxQueryLen {
		return q, queryErrorf("query string is %d bytes long; the limit is %d", len(raw), maxQueryLen)
	}
	var seen uint16
	err := walkQuery(raw, func(key, value string) error {
		var dst *string
		var bit uint16
		switch key {
		case "appVersionCode":
			dst, bit = &q.AppVersionCode, 1<<0
		case "appVersionName":
			dst, bit = &q.AppVersionName, 1<<1
		case "bundleId":
			dst, bit = &q.BundleID, 1<<2
		case "channelName":
			dst, bit = &q.ChannelName, 1<<3
		case "customId":
			dst, bit = &q.CustomID, 1<<4
		case "deviceId":
			dst, bit = &q.DeviceID, 1<<5
		case "osVersion":
			dst, bit = &q.OSVersion, 1<<6
		case "platform":
			dst, bit = &q.Platform, 1<<7
		case "pluginVersion":
			dst, bit = &q.PluginVersion, 1<<8
		default:
			return nil
		}
		if seen&bit != 0 {
			return queryErrorf("query parameter %s is given twice", key)
		}
		seen |= bit
		if len(value) > maxValueLen {
			return queryErrorf("query parameter %s is %d bytes long; the limit is %d", key, len(value), maxValueLen)
		}
		*dst = value
		return nil
	})
	if err != nil {
		return Query{}, err
	}
	if q.DeviceID == "" {
		if len(header) > maxDeviceID {
			return Query{}, queryErrorf("X-Capawesome-Device-Id is %d bytes long; the limit is %d", len(header), maxDeviceID)
		}
		q.DeviceID = header
	}
	if err := q.check(); err != nil {
		return Query{}, err
	}
	return q, nil
}

// check refuses what the plugin never sends: another platform, a device
// id that is not an id. An empty device id or native version is left to
// the decision, which answers missing_info like /updates.
func (q *Query) check() error {
	switch q.Platform {
	case platformAndroid, platformIOS:
	case "":
		return queryErrorf("query parameter platform is missing; the plugin sends 0 (Android) or 1 (iOS)")
	default:
		return queryErrorf("platform %q is not 0 (Android) or 1 (iOS)", clip(q.Platform))
	}
	id := q.DeviceID
	if len(id) > maxDeviceID {
		return queryErrorf("device id is %d bytes long; the limit is %d", len(id), maxDeviceID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-' && c != ':') {
			return queryErrorf("device id %q is invalid; the plugin sends a UUID", clip(id))
		}
	}
	return nil
}

// Request puts the check in the terms of the decision (update.DecideFor):
// the native version is version_build, the running bundle version_name
// (empty on the built-in bundle, which the decision reads as the native
// version, as for the other plugin), the device's channel defaultChannel.
// The plugin sends no build type or emulator flag: such a device counts as
// a production build on a real device.
func (q *Query) Request(appID string) ota.UpdateRequest {
	platform := "android"
	if q.Platform == platformIOS {
		platform = "ios"
	}
	return ota.UpdateRequest{
		Platform:       platform,
		DeviceID:       strings.ToLower(q.DeviceID),
		AppID:          appID,
		CustomID:       q.CustomID,
		VersionBuild:   q.AppVersionName,
		VersionCode:    q.AppVersionCode,
		VersionOS:      q.OSVersion,
		VersionName:    q.BundleID,
		PluginVersion:  q.PluginVersion,
		DefaultChannel: q.ChannelName,
	}
}

// walkQuery calls fn with each decoded key and value of a raw query, in
// order. A bare key has the value "". Empty pieces ("a&&b") are skipped.
func walkQuery(raw string, fn func(key, value string) error) error {
	for raw != "" {
		var piece string
		piece, raw, _ = strings.Cut(raw, "&")
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		key, err := unescape(k)
		if err != nil {
			return err
		}
		value, err := unescape(v)
		if err != nil {
			return err
		}
		if err := fn(key, value); err != nil {
			return err
		}
	}
	return nil
}

// unescape percent-decodes s, leaving '+' as it is. The result must be
// UTF-8. A string without escapes is returned as it is, not copied.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		if !utf8.ValidString(s) {
			return "", queryErrorf("query string is not UTF-8")
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", queryErrorf("query string has a malformed escape near %q", clip(s[i:]))
		}
		b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
		i += 2
	}
	if !utf8.Valid(b) {
		return "", queryErrorf("query string is not UTF-8")
	}
	return string(b), nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// clip shortens a device-supplied string echoed in a message.
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
