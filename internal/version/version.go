// Package version holds the build's version, commit and date, stamped in by
// the release build with -ldflags -X and read from the module's build
// information otherwise.
package version

import (
	"runtime/debug"

	"github.com/otaship/ota/pkg/ota"
)

// Set by -ldflags "-X github.com/otaship/ota/internal/version.Version=…".
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// Info returns the build's version information.
func Info() ota.VersionInfo {
	v := ota.VersionInfo{Version: Version, Commit: Commit, Date: Date}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.time":
				if v.Date == "" {
					v.Date = s.Value
				}
			}
		}
	}
	return v
}
