package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/otaship/ota/internal/cli/config"
	"github.com/otaship/ota/internal/version"
)

const rootLong = `otactl builds, uploads, rolls back and inspects Capacitor live updates
served by otad.

Settings, highest priority first: flags, OTACTL_* environment variables
(OTACTL_SERVER, OTACTL_APP_ID, OTACTL_OUTPUT, OTACTL_DELTA), otactl.yaml
beside the project's capacitor.config.*, the user config file
($XDG_CONFIG_HOME/otactl/config.yaml), defaults. The keys are server,
app_id, output and delta ("delta: true" makes deploy web --delta the
default). OTACTL_TOKEN, when set, is used instead of the token stored by
"otactl login" (for CI).

Exit codes:
  0  success
  1  error
  2  usage error (bad flag or argument)
  3  not authenticated: no token, or it expired (run: otactl login)
  4  conflict: the version exists already (bump it)
  5  a build step failed (npm, npx cap sync, docker/gradle)
  6  server error or server unreachable`

// NewCmdRoot builds otactl's command tree over f.
func NewCmdRoot(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "otactl <command>",
		Short: "Ship Capacitor live updates to an otad server",
		Long:  rootLong,
		Example: `  otactl login --server https://ota.example.com
  otactl deploy web 1.2.0
  otactl status
  otactl rollback stable`,
		Version:       version.Info().Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			f.flags.set = changedFlags(cmd.Root().PersistentFlags(), globalFlagKeys)
			return nil
		},
	}
	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &FlagError{Err: err} })

	pf := cmd.PersistentFlags()
	pf.StringVar(&f.flags.server, "server", "", "otad URL (env OTACTL_SERVER)")
	pf.StringVar(&f.flags.appID, "app-id", "", "app id (env OTACTL_APP_ID; default: the Capacitor project's appId)")
	pf.StringVarP(&f.flags.output, "output", "o", "", "output format: table or json (env OTACTL_OUTPUT)")
	pf.StringVar(&f.flags.configFile, "config", "", "settings file to use instead of the user config file")

	cmd.AddCommand(
		NewCmdLogin(f, nil),
		NewCmdLogout(f, nil),
		NewCmdDeploy(f),
		NewCmdRollback(f, nil),
		NewCmdRollout(f, nil),
		NewCmdExplain(f, nil),
		NewCmdStats(f, nil),
		NewCmdAdoption(f, nil),
		NewCmdDelete(f, nil),
		NewCmdPromote(f, nil),
		NewCmdHistory(f, nil),
		NewCmdChannel(f),
		NewCmdDevice(f),
		NewCmdStatus(f, nil),
		NewCmdBundle(f),
		NewCmdKey(f),
		NewCmdToken(f),
		NewCmdImport(f, nil),
		NewCmdWebhook(f),
		NewCmdVersion(f, nil),
		NewCmdCompletion(f),
	)
	return cmd
}

// globalFlagKeys maps the global flags to the config keys they override.
var globalFlagKeys = map[string]string{"server": config.KeyServer, "app-id": config.KeyAppID, "output": config.KeyOutput}

// changedFlags returns the values of the flags the user set, keyed by the
// config key they override.
func changedFlags(fs *pflag.FlagSet, keys map[string]string) map[string]string {
	set := map[string]string{}
	for flag, key := range keys {
		if fl := fs.Lookup(flag); fl != nil && fl.Changed {
			set[key] = fl.Value.String()
		}
	}
	return set
}

// exactArgs and friends are cobra's argument checks returning *FlagError,
// so a wrong argument count exits with the usage code, and saying which
// argument is missing or extra (cobra says only "accepts 1 arg(s)").
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error { return checkArgCount(cmd, args, n, n) }
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error { return checkArgCount(cmd, args, 0, n) }
}

func noArgs(cmd *cobra.Command, args []string) error { return checkArgCount(cmd, args, 0, 0) }

// checkArgCount wants between min and max positional arguments.
func checkArgCount(cmd *cobra.Command, args []string, min, max int) error {
	switch {
	case len(args) < min:
		names := argNames(cmd)
		missing := "an argument"
		if len(names) >= min {
			missing = strings.Join(names[len(args):min], " and ")
		}
		return &FlagError{Err: fmt.Errorf("%s needs %s: %s", cmd.CommandPath(), missing, usageLine(cmd))}
	case len(args) > max && max == 0 && cmd.HasSubCommands():
		return &FlagError{Err: fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
	// The arguments are not quoted back: one may be a password typed
	// where it does not belong, and error output lands in CI logs.
	case len(args) > max && max == 0:
		return &FlagError{Err: fmt.Errorf("%s takes no arguments, but got %d: %s", cmd.CommandPath(), len(args), usageLine(cmd))}
	case len(args) > max:
		return &FlagError{Err: fmt.Errorf("%s takes at most %d argument(s) (%s), but got %d: %s",
			cmd.CommandPath(), max, strings.Join(argNames(cmd), " "), len(args), usageLine(cmd))}
	}
	return nil
}

// argNames are the positional argument names in a command's Use line, such
// as CHANNEL in "rollback CHANNEL", without the brackets of optional ones.
func argNames(cmd *cobra.Command) []string {
	fields := strings.Fields(cmd.Use)
	var names []string
	for _, f := range fields[min(1, len(fields)):] {
		if strings.HasPrefix(f, "-") {
			break // flags follow ("promote VERSION --from CHANNEL")
		}
		names = append(names, strings.Trim(f, "[]."))
	}
	return names
}

// usageLine is "usage: otactl rollback CHANNEL [flags]".
func usageLine(cmd *cobra.Command) string {
	return "usage: " + cmd.UseLine()
}
