package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/internal/capacitor"
	"github.com/otaship/ota/internal/cli/config"
	"github.com/otaship/ota/pkg/ota"
)

// ExplainOptions are the inputs of otactl explain.
type ExplainOptions struct {
	F        *Factory
	AppID    string
	Channel  string
	Native   string
	Device   string
	Bundle   string
	Platform string
	Plugin   string
}

// NewCmdExplain builds `otactl explain`.
func NewCmdExplain(f *Factory, runF func(*ExplainOptions) error) *cobra.Command {
	opts := &ExplainOptions{F: f}
	cmd := &cobra.Command{
		Use:   "explain",
		Short: "Show which bundle a device would get, and why",
		Long: `Ask otad which bundle a device would be offered now, with every step of the
decision: channel choice, staged rollout cohort, failures the device reported,
native version range and channel policies. otad answers with the same code
that answers devices, so what it prints is what the device gets.

--native, the device's native app version, is required, except in a
Capacitor project with android/app/build.gradle: its versionName is then
the default (what the APK built from it reports).`,
		Example: `  otactl explain --channel stable --native 1.4.0
  otactl explain --app-id com.example.app --native 1.4.0 --device 6aa0b2a5-... --bundle 1.2.0
  otactl explain --channel beta      # in a project with android/: its versionName`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return explainRun(cmd, opts)
		},
	}
	cmd.Flags().StringVar(&opts.AppID, "app-id", "", "app to ask about (default: the project's app id)")
	cmd.Flags().StringVar(&opts.Channel, "channel", "", "channel the device asks for (default: the app's default channel)")
	cmd.Flags().StringVar(&opts.Native, "native", "", "the device's native app version, version_build (required; default in a project with android/: its versionName)")
	cmd.Flags().StringVar(&opts.Device, "device", "", "device id (rollout cohorts and failure reports depend on it)")
	cmd.Flags().StringVar(&opts.Bundle, "bundle", "", "bundle the device runs now (default: the builtin one)")
	cmd.Flags().StringVar(&opts.Platform, "platform", "android", "ios, android or electron")
	cmd.Flags().StringVar(&opts.Plugin, "plugin-version", "", "updater plugin version of the device")
	return cmd
}

// nativeDefault is the --native of a device running the APK built from
// the project around the working directory: android/app/build.gradle's
// versionName, when there is one.
func nativeDefault(f *Factory) (string, error) {
	dir := config.FindProjectDir(f.WorkDir)
	if dir == "" {
		return "", flagErrorf("--native is required: the device's native app version (version_build), e.g. --native 1.4.0")
	}
	v, err := capacitor.GradleVersionName(dir)
	if err != nil {
		return "", flagErrorf("--native is required: the device's native app version (version_build), e.g. --native 1.4.0 (no default from the project: %v)", err)
	}
	fmt.Fprintf(f.IO.ErrOut, "native version %s (versionName in android/app/build.gradle; pass --native to ask about another)\n", v)
	return v, nil
}

func explainRun(cmd *cobra.Command, opts *ExplainOptions) error {
	f := opts.F
	ctx := cmd.Context()
	if opts.Native == "" {
		v, err := nativeDefault(f)
		if err != nil {
			return err
		}
		opts.Native = v
	}
	client, err := f.Client(true)
	if err != nil {
		return err
	}
	app := opts.AppID
	if app == "" {
		if app, err = f.AppID(ctx); err != nil {
			return err
		}
	}
	req := ota.UpdateRequest{
		AppID: app, DeviceID: opts.Device, Platform: opts.Platform, VersionBuild: opts.Native,
		VersionName: opts.Bundle, DefaultChannel: opts.Channel, PluginVersion: opts.Plugin,
	}
	res, err := client.Explain(ctx, app, req)
	if err != nil {
		return fmt.Errorf("explain the decision for %s: %w", app, err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, res)
	}
	for i, s := range res.Steps {
		fmt.Fprintf(f.IO.Out, "%2d. %s\n", i+1, s)
	}
	r := res.Response
	switch {
	case r.Error != "":
		fmt.Fprintf(f.IO.Out, "\nAnswer: %s (%s): %s\n", r.Error, r.Kind, r.Message)
	case r.Version == ota.VersionBuiltin:
		fmt.Fprintf(f.IO.Out, "\nAnswer: go back to the builtin bundle (channel %s)\n", orDash(res.Channel))
	default:
		fmt.Fprintf(f.IO.Out, "\nAnswer: bundle %s from channel %s\n  %s\n", r.Version, orDash(res.Channel), r.URL)
	}
	return nil
}
