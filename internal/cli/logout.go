package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/internal/cli/config"
)

// LogoutOptions are the inputs of otactl logout.
type LogoutOptions struct {
	F *Factory
}

// NewCmdLogout builds `otactl logout`.
func NewCmdLogout(f *Factory, runF func(*LogoutOptions) error) *cobra.Command {
	opts := &LogoutOptions{F: f}
	return &cobra.Command{
		Use:     "logout",
		Short:   "Forget the stored token of the server",
		Example: `  otactl logout --server https://ota.example.com`,
		Args:    noArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return logoutRun(opts)
		},
	}
}

func logoutRun(opts *LogoutOptions) error {
	f := opts.F
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	if cfg.Server == "" {
		return flagErrorf("no server configured: pass --server URL or set OTACTL_SERVER")
	}
	creds, err := config.LoadCredentials(cfg.Dir)
	if err != nil {
		return err
	}
	if _, ok := creds.Tokens[cfg.Server]; !ok {
		fmt.Fprintf(f.IO.ErrOut, "Not logged in to %s\n", cfg.Server)
		return nil
	}
	delete(creds.Tokens, cfg.Server)
	if err := config.SaveCredentials(cfg.Dir, creds); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "Logged out of %s\n", cfg.Server)
	if cfg.TokenFromEnv {
		fmt.Fprintln(f.IO.ErrOut, "Note: OTACTL_TOKEN is still set and is still used.")
	}
	return nil
}
