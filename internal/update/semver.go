package update

import (
	"errors"
	"fmt"
	"strings"
)

// Version is a parsed semantic version. Build metadata is dropped: it takes
// no part in precedence.
type Version struct {
	Major, Minor, Patch uint64
	// Pre is the pre-release part without its leading '-', "" for a release.
	Pre string
}

// errNotSemver is wrapped by every ParseVersion failure.
var errNotSemver = errors.New("not a semantic version")

// ParseVersion parses a version the way devices report it: strict
// MAJOR.MINOR.PATCH[-pre][+build], with a leading "v" tolerated. Leading
// zeros in the numbers are accepted, because Android version names often
// carry them and refusing them would cut such devices off from updates.
func ParseVersion(s string) (Version, error) {
	var v Version
	rest := s
	if len(rest) > 0 && (rest[0] == 'v' || rest[0] == 'V') {
		rest = rest[1:]
	}
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		if !validIdents(rest[i+1:], false) {
			return v, fmt.Errorf("%q: bad build metadata: %w", s, errNotSemver)
		}
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		v.Pre = rest[i+1:]
		if !validIdents(v.Pre, true) {
			return Version{}, fmt.Errorf("%q: bad pre-release: %w", s, errNotSemver)
		}
		rest = rest[:i]
	}
	var ok bool
	if v.Major, rest, ok = number(rest); !ok || !cutDot(&rest) {
		return Version{}, fmt.Errorf("%q: %w", s, errNotSemver)
	}
	if v.Minor, rest, ok = number(rest); !ok || !cutDot(&rest) {
		return Version{}, fmt.Errorf("%q: %w", s, errNotSemver)
	}
	if v.Patch, rest, ok = number(rest); !ok || rest != "" {
		return Version{}, fmt.Errorf("%q: %w", s, errNotSemver)
	}
	return v, nil
}

// CoerceNative turns a native version_build into a Version the way Capgo's
// fixSemver does: "1" is 1.0.0, "1.2" is 1.2.0, and the internal names
// "builtin" and "unknown" are 0.0.0.
func CoerceNative(s string) (Version, error) {
	switch s {
	case "builtin", "unknown":
		return Version{}, nil
	}
	core := s
	if i := strings.IndexAny(core, "-+"); i >= 0 {
		core = core[:i]
	}
	switch strings.Count(core, ".") {
	case 0:
		return ParseVersion(core + ".0.0" + s[len(core):])
	case 1:
		return ParseVersion(core + ".0" + s[len(core):])
	}
	return ParseVersion(s)
}

// Compare returns -1, 0 or +1 as a orders before, with or after b under
// semver precedence.
func (a Version) Compare(b Version) int {
	if c := cmpUint(a.Major, b.Major); c != 0 {
		return c
	}
	if c := cmpUint(a.Minor, b.Minor); c != 0 {
		return c
	}
	if c := cmpUint(a.Patch, b.Patch); c != 0 {
		return c
	}
	return comparePre(a.Pre, b.Pre)
}

// String formats v without build metadata.
func (a Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", a.Major, a.Minor, a.Patch)
	if a.Pre != "" {
		s += "-" + a.Pre
	}
	return s
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// comparePre orders pre-release strings: a release (empty) is higher than
// any pre-release; identifiers compare numerically when both are numeric,
// numeric ones are lower than alphanumeric ones, and a longer list wins a
// tie (semver 2.0 §11).
func comparePre(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	for {
		ai, arest, amore := strings.Cut(a, ".")
		bi, brest, bmore := strings.Cut(b, ".")
		if c := compareIdent(ai, bi); c != 0 {
			return c
		}
		switch {
		case !amore && !bmore:
			return 0
		case !amore:
			return -1
		case !bmore:
			return 1
		}
		a, b = arest, brest
	}
}

func compareIdent(a, b string) int {
	an, bn := isNumeric(a), isNumeric(b)
	switch {
	case an && bn:
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(a) != len(b) {
			return cmpUint(uint64(len(a)), uint64(len(b)))
		}
		return strings.Compare(a, b)
	case an:
		return -1
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}

// number reads a decimal number at the start of s. It fails on an empty
// number and on overflow.
func number(s string) (uint64, string, bool) {
	var n uint64
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, s, false
		}
		n = n*10 + d
	}
	return n, s[i:], i > 0
}

func cutDot(s *string) bool {
	if len(*s) == 0 || (*s)[0] != '.' {
		return false
	}
	*s = (*s)[1:]
	return true
}

// validIdents checks a dot-separated list of [0-9A-Za-z-] identifiers. In a
// pre-release, numeric identifiers must not have leading zeros.
func validIdents(s string, pre bool) bool {
	if s == "" {
		return false
	}
	for id := range strings.SplitSeq(s, ".") {
		if id == "" {
			return false
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return false
			}
		}
		if pre && len(id) > 1 && id[0] == '0' && isNumeric(id) {
			return false
		}
	}
	return true
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
