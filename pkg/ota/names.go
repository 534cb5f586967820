package ota

import (
	"fmt"
	"strings"
)

// The rules for the names the admin API accepts, shared by otad (which
// enforces them) and otactl (which checks them before a build that may take
// minutes), so the two cannot disagree.

// Limits of names.
const (
	MaxVersionLen = 128
	MaxChannelLen = 64
)

func isAlnum(r byte) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// ValidateVersion checks a bundle version name: 1-128 of [0-9A-Za-z._+-],
// starting with a letter or digit, not a name the plugin reserves. With
// kind KindWeb it must start with a digit, because channel policies
// compare web versions as semver.
func ValidateVersion(v, kind string) error {
	if v == "" {
		return fmt.Errorf("version is required, e.g. 1.2.0")
	}
	if len(v) > MaxVersionLen {
		return fmt.Errorf("version is %d characters long; the limit is %d", len(v), MaxVersionLen)
	}
	if t := strings.TrimSpace(v); t != v && t != "" {
		return fmt.Errorf("version %q has white space around it; use %q", clipName(v), clipName(t))
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !isAlnum(c) && c != '.' && c != '_' && c != '+' && c != '-' {
			return fmt.Errorf("version %q contains %q; use only letters, digits and . _ + -", clipName(v), c)
		}
	}
	if !isAlnum(v[0]) {
		return fmt.Errorf("version %q must start with a letter or digit", clipName(v))
	}
	if strings.EqualFold(v, VersionBuiltin) || strings.EqualFold(v, "unknown") {
		return fmt.Errorf("version %q is reserved by the updater plugin; pick another name", v)
	}
	if kind == KindWeb && (v[0] < '0' || v[0] > '9') {
		return fmt.Errorf("web bundle version %q must be semver-like and start with a digit, e.g. 1.2.0", clipName(v))
	}
	return nil
}

// ValidateChannel checks a channel name: [a-z0-9][a-z0-9._-]{0,63}.
func ValidateChannel(name string) error {
	if name == "" {
		return fmt.Errorf("channel name is required")
	}
	if len(name) > MaxChannelLen {
		return fmt.Errorf("channel name is %d characters long; the limit is %d", len(name), MaxChannelLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return fmt.Errorf("channel name %q is invalid; use lowercase letters, digits and . _ - (starting with a letter or digit)", clipName(name))
		}
	}
	return nil
}

// clipName shortens a value quoted back in an error message.
func clipName(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
