package delta

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/pkg/ota"
)

// maxPathLen bounds one file's path; file systems on devices refuse longer
// ones long before.
const maxPathLen = 1024

// maxProblems caps the problems one check reports, so a hostile manifest
// cannot make a huge error.
const maxProblems = 20

// ManifestError lists every reason a manifest is refused, so one upload
// reports them all.
type ManifestError struct {
	Problems []string
}

func (e *ManifestError) Error() string {
	return "invalid delta manifest: " + strings.Join(e.Problems, "; ")
}

// PluginPathProblem says why the updater plugin would refuse a manifest
// entry's file_name, with stat manifest_path_fail, or "" when it accepts
// it. It follows iOS resolveManifestTargetPath / resolvePathInsideDirectory
// (ios/Sources/CapacitorUpdaterPlugin/CapgoUpdater.swift L137-165 in
// 8.51.14) and Android resolveManifestTargetFile (DownloadService.java
// L186-190): a ".br" suffix is dropped, then the name may not be empty,
// hold a backslash or a NUL, be absolute, or lead outside the bundle
// folder once "." and ".." are resolved.
func PluginPathProblem(fileName string) string {
	target := strings.TrimSuffix(fileName, ".br")
	switch {
	case target == "":
		return "empty path"
	case strings.ContainsRune(target, '\\'):
		return "path contains a backslash"
	case strings.ContainsRune(target, 0):
		return "path contains a NUL byte"
	case strings.HasPrefix(target, "/"):
		return "absolute path"
	}
	clean := path.Clean(target)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "path leads outside the bundle folder"
	}
	return ""
}

// PathProblem says why otad refuses a file path in a manifest, or "".
// Besides what the plugin refuses, a path must be in canonical form (no
// "." or ".." segments, no empty segments, no trailing slash) and valid
// UTF-8, so that every path names one file in one way, the way it is
// named in the zip.
func PathProblem(p string) string {
	if bad := PluginPathProblem(p); bad != "" {
		return bad
	}
	switch {
	case len(p) > maxPathLen:
		return fmt.Sprintf("path is longer than %d bytes", maxPathLen)
	case !utf8.ValidString(p):
		return "path is not valid UTF-8"
	case strings.HasSuffix(p, "/"):
		return "path names a folder"
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return "path has an empty segment (//)"
		case ".", "..":
			return fmt.Sprintf("path has a %q segment", seg)
		}
	}
	return ""
}

// IsHexSHA256 reports whether s is 64 lowercase hex digits.
func IsHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// CheckManifest checks a manifest sent with an upload, before otad looks
// for its files: at least one and at most ota.MaxManifestFiles files, each
// with a path PathProblem accepts and a SHA-256; no two files landing on
// the same path (nor on paths that differ only in case, which collide on
// iOS's case-insensitive file system); no file where another needs a
// folder; an index.html at the root (the plugin cannot set a bundle
// without one). encrypted says whether the release is encrypted: its
// files then name their stored forms and the file_hash devices get,
// which plain ones must not (otad fills those in). A plain release's files
// are all signed (for @capawesome/capacitor-live-update) or none is.
func CheckManifest(files []ota.ManifestFile, encrypted bool) error {
	var problems []string
	more := 0
	add := func(format string, args ...any) {
		if len(problems) < maxProblems {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else {
			more++
		}
	}
	switch {
	case len(files) == 0:
		add("the manifest lists no files")
	case len(files) > ota.MaxManifestFiles:
		add("the manifest lists %d files, more than the limit of %d", len(files), ota.MaxManifestFiles)
		return &ManifestError{Problems: problems}
	}
	exact := make(map[string]bool, len(files))
	folded := make(map[string]string, len(files))
	hasIndex := false
	signed := 0
	for i := range files {
		f := &files[i]
		if bad := PathProblem(f.Path); bad != "" {
			add("file %q: %s", clipName(f.Path), bad)
			continue
		}
		if !IsHexSHA256(f.SHA256) {
			add("file %q: sha256 %q is not 64 lowercase hex digits", f.Path, clipName(f.SHA256))
		}
		if f.Size < 0 {
			add("file %q: size %d is negative", f.Path, f.Size)
		}
		if encrypted {
			checkEncryptedForms(f, add)
		} else if f.Raw != "" || f.Br != "" || f.FileHash != "" {
			add("file %q: raw, br and file_hash are for encrypted releases; otad finds the stored forms of plain files itself", f.Path)
		}
		switch {
		case f.Signature == "":
		case encrypted:
			add("file %q: a signature is for @capawesome/capacitor-live-update, which cannot install encrypted releases", f.Path)
		default:
			signed++
			if err := bundle.CheckSignature(f.Signature); err != nil {
				add("file %q: %v", f.Path, err)
			}
		}
		if exact[f.Path] {
			add("file %q is listed twice", f.Path)
			continue
		}
		exact[f.Path] = true
		low := strings.ToLower(f.Path)
		if other, ok := folded[low]; ok {
			add("files %q and %q differ only in case: they would overwrite each other on iOS", other, f.Path)
			continue
		}
		folded[low] = f.Path
		if f.Path == "index.html" {
			hasIndex = true
		}
	}
	// A file that another file needs as a folder ("a" and "a/b").
	names := make([]string, 0, len(exact))
	for p := range exact {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, p := range names {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if exact[dir] {
				add("%q is a file, but %q needs it to be a folder", dir, p)
				break
			}
		}
	}
	if signed > 0 && signed < len(files) {
		add("%d of the %d files are signed: a device with a publicKey verifies every file, so sign all of them or none (otactl deploy web --delta --sign-key signs them all)", signed, len(files))
	}
	if len(files) > 0 && !hasIndex {
		add("no index.html at the bundle root: devices cannot start a bundle without one")
	}
	if more > 0 {
		problems = append(problems, fmt.Sprintf("and %d more problems", more))
	}
	if len(problems) > 0 {
		return &ManifestError{Problems: problems}
	}
	return nil
}

func checkEncryptedForms(f *ota.ManifestFile, add func(string, ...any)) {
	if !IsHexSHA256(f.Raw) {
		add("file %q: an encrypted release names each file's encrypted raw form (raw, a SHA-256)", f.Path)
	}
	if f.Br != "" && !IsHexSHA256(f.Br) {
		add("file %q: br %q is not a SHA-256", f.Path, clipName(f.Br))
	}
	if NeedsBrotli(f.Path) && f.Br == "" {
		add("file %q ends in .br, so devices only take it Brotli-compressed: it needs a br form", f.Path)
	}
	if f.FileHash == "" || len(f.FileHash) > 1024 {
		add("file %q: an encrypted release needs the RSA-encrypted SHA-256 devices verify (file_hash)", f.Path)
	}
}

// clipName shortens a name echoed in a problem.
func clipName(s string) string {
	const max = 120
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
