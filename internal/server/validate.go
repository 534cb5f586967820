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
	maxAppLen = 128
	// maxDeviceLen: the plugin sends a 36-character UUID (protocol.md
	// §1.2); custom ids get room beyond it.
	maxDeviceLen = 64
	maxNotesLen  = 2000
)

func isAlnum(r byte) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// checkVersion validates a bundle version name by ota.ValidateVersion, the
// rule otactl checks before it builds.
func checkVersion(v, kind string) error {
	if err := ota.ValidateVersion(v, kind); err != nil {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidVersion, "%s", err.Error())
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

// checkChannel validates a channel name by ota.ValidateChannel.
func checkChannel(name string) error {
	if err := ota.ValidateChannel(name); err != nil {
		return newError(http.StatusBadRequest, ota.ErrCodeInvalidName, "%s", err.Error())
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

// checkDevice validates a device id (see deviceIDValid) and returns it
// lowercased, as devices are keyed.
func checkDevice(id string) (string, error) {
	if !deviceIDValid(id) {
		return "", invalidDevice(id)
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
