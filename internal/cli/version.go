package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/internal/version"
	"github.com/otaship/ota/pkg/ota"
)

// VersionOptions are the inputs of otactl version.
type VersionOptions struct {
	F *Factory
}

// Versions is what `otactl version -o json` prints. Server is nil when no
// server is configured or it could not be reached.
type Versions struct {
	Client ota.VersionInfo  `json:"client"`
	Server *ota.VersionInfo `json:"server,omitempty"`
}

// NewCmdVersion builds `otactl version`.
func NewCmdVersion(f *Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{F: f}
	return &cobra.Command{
		Use:   "version",
		Short: "Show otactl's version and the server's",
		Example: `  otactl version
  otactl version -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return versionRun(cmd, opts)
		},
	}
}

func versionRun(cmd *cobra.Command, opts *VersionOptions) error {
	f := opts.F
	v := Versions{Client: version.Info()}
	var serverErr error
	if cfg, err := f.Config(); err == nil && cfg.Server != "" {
		client, err := f.Client(false)
		if err == nil {
			sv, err := client.Version(cmd.Context())
			if err == nil {
				v.Server = &sv
			}
			serverErr = err
		}
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, v)
	}
	fmt.Fprintf(f.IO.Out, "otactl %s%s\n", v.Client.Version, commitSuffix(v.Client))
	switch {
	case v.Server != nil:
		fmt.Fprintf(f.IO.Out, "otad   %s%s\n", v.Server.Version, commitSuffix(*v.Server))
	case serverErr != nil:
		// The client's version is still useful; the server's is a bonus.
		fmt.Fprintf(f.IO.ErrOut, "server version unknown: %v\n", serverErr)
	}
	return nil
}

func commitSuffix(v ota.VersionInfo) string {
	if v.Commit == "" {
		return ""
	}
	c := v.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	return " (" + c + ")"
}
