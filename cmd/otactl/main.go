// Command otactl builds, uploads, rolls back and inspects Capacitor live
// updates served by otad. See docs/cli.
package main

import (
	"os"

	"github.com/otaship/ota/internal/cli"
)

func main() { os.Exit(cli.Main()) }
