// Command otad is the release server for Capacitor live updates: it stores
// web bundles and APKs, keeps channels and their history, and answers the
// updater plugin's update checks. See docs/architecture.md.
package main

import (
	"os"

	"github.com/otaship/ota/internal/daemon"
)

func main() { os.Exit(daemon.Main()) }
