package server

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/otaship/ota/pkg/ota"
)

// Validators for every name that reaches the store from outside: path
// parameters, form fields and JSON fields. They check by hand instead of by
// regexp because they run on every admin request and the rules are short.

const (
	maxVersionLen = 128
	maxChannelLen = 64
	maxAppLen     = 128
	maxDeviceLen  = 128
	maxNotesLen   = 2000
)

func isAlnum(r byte) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// checkVersion validates a bundle version name: 1-128 of [0-9A-Za-z._+-],
// starting with a letter or digit, not a name the plugin reserves. Web bundles must also start with a digit,
// because channel policies compare versions as semver.
func checkVersion(v, kind string) error {
	if v == "" {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidVersion, "version is required, e.g. 1.2.0")
	}
	if len(v) > maxVersionLen {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidVersion, "version is %d characters long; the limit is %d", len(v), maxVersionLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !isAlnum(c) && c != '.' && c != '_' && c != '+' && c != '-' {
			return newError(http.StatusBadRequest, ota.ErrCodeInvalidVersion,
				"version %q contains %q; use only letters, digits and . _ + -", clip(v), c)
		}
	}
	if !isAlnum(v[0]) {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidVersion,
			"version %q must start with a letter or digit", clip(v))
	}
	if strings.EqualFold(v, ota.VersionBuiltin) || strings.EqualFold(v, "unknown") {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidVersion,
			"version %q is reserved by the updater plugin; pick another name", v)
	}
	if kind == ota.KindWeb && (v[0] < '0' || v[0] > '9') {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidVersion,
			"web bundle version %q must be semver-like and start with a digit, e.g. 1.2.0", clip(v))
	}
	return nil
}

// checkVersionRef validates a version named in a path or a rollback
// target: like checkVersion without the kind rule, and builtin allowed
// where allowBuiltin says so.
func checkVersionRef(v string, allowBuiltin bool) error {
	if allowBuiltin && v == ota.VersionBuiltin {
		return nil
	}
	return checkVersion(v, "")
}

// checkChannel validates a channel name: [a-z0-9][a-z0-9._-]{0,63}.
func checkChannel(name string) error {
	if name == "" {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidName, "channel name is required")
	}
	if len(name) > maxChannelLen {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidName, "channel name is %d characters long; the limit is %d", len(name), maxChannelLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return newError(http.StatusBadRequest, ota.ErrCodeInvalidName,
				"channel name %q is invalid; use lowercase letters, digits and . _ - (starting with a letter or digit)", clip(name))
		}
	}
	return nil
}

// checkApp validates an app id: 1-128 of [A-Za-z0-9._-], reverse-DNS style.
func checkApp(id string) error {
	if id == "" {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidName, "app id is required, e.g. com.example.app")
	}
	if len(id) > maxAppLen {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidName, "app id is %d characters long; the limit is %d", len(id), maxAppLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return newError(http.StatusBadRequest, ota.ErrCodeInvalidName,
				"app id %q is invalid; use letters, digits and . _ -, e.g. com.example.app", clip(id))
		}
	}
	if id == "." || id == ".." {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidName, "app id %q is invalid", id)
	}
	return nil
}

// checkDevice validates a device id (the plugin sends a UUID; custom ids
// are allowed) and returns it lowercased, as devices are keyed.
func checkDevice(id string) (string, error) {
	if id == "" {
		return "", newError(http.StatusBadRequest, ota.ErrCodeInvalidName, "device id is required")
	}
	if len(id) > maxDeviceLen {
		return "", newError(http.StatusBadRequest, ota.ErrCodeInvalidName, "device id is %d characters long; the limit is %d", len(id), maxDeviceLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isAlnum(c) && (i == 0 || c != '.' && c != '_' && c != '-' && c != ':') {
			return "", newError(http.StatusBadRequest, ota.ErrCodeInvalidName,
				"device id %q is invalid; use letters, digits and . _ - : (starting with a letter or digit)", clip(id))
		}
	}
	return strings.ToLower(id), nil
}

// checkNotes bounds free-text release notes.
func checkNotes(s string) error {
	if len(s) > maxNotesLen {
		return badRequest("notes are %d bytes long; the limit is %d", len(s), maxNotesLen)
	}
	if !utf8.ValidString(s) {
		return badRequest("notes must be UTF-8 text")
	}
	return nil
}

// clip shortens a value quoted back in an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
