package cli

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/pkg/ota"
)

// StatsOptions are the inputs of otactl stats.
type StatsOptions struct {
	F       *Factory
	Channel string
	Window  time.Duration
	// Failures also lists, per version, the files of a delta release
	// devices failed to fetch or verify.
	Failures bool
}

// NewCmdStats builds `otactl stats`.
func NewCmdStats(f *Factory, runF func(*StatsOptions) error) *cobra.Command {
	opts := &StatsOptions{F: f}
	cmd := &cobra.Command{
		Use:   "stats [CHANNEL]",
		Short: "Show per-version device health: installs, failures, failure rate",
		Long: `Show, per bundle version, how many distinct devices installed it and how many
reported failures (update_fail, set_fail, checksum_fail, unzip_fail,
download_fail, ...), by kind, with the failure rate, over a time window
(default 7 days). With CHANNEL, only that channel's releases.

STALLED counts the devices otad sees stalled on a version now: offered it,
they kept polling on another version past the channel's stalled window
without installing it or reporting a failure (silent failures: an app that
hangs before notifyAppReady). They are live, not limited to the window,
and count toward auto-halt unless the channel says otherwise.

Failures of single files of a delta release (download_manifest_file_fail,
download_manifest_checksum_fail, download_manifest_brotli_fail,
manifest_path_fail) count against the release; --failures names the failing
files, the most reported first. Android reports a file by its base name,
iOS by its path. -o json always has them (versions[].files).`,
		Example: `  otactl stats
  otactl stats stable --window 24h
  otactl stats --failures
  otactl stats -o json`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Channel = args[0]
			}
			if opts.Window < 0 {
				return flagErrorf("--window must be positive, e.g. 24h")
			}
			if runF != nil {
				return runF(opts)
			}
			return statsRun(cmd, opts)
		},
	}
	cmd.Flags().DurationVar(&opts.Window, "window", 0, "how far back to look, e.g. 24h (default 7 days)")
	cmd.Flags().BoolVar(&opts.Failures, "failures", false, "also list the files of delta releases that devices failed to fetch or verify")
	return cmd
}

func statsRun(cmd *cobra.Command, opts *StatsOptions) error {
	f := opts.F
	ctx := cmd.Context()
	client, app, err := f.AppClient(ctx)
	if err != nil {
		return err
	}
	sum, err := client.Health(ctx, app, opts.Channel, opts.Window)
	if err != nil {
		return fmt.Errorf("read device health of %s: %w", app, err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, sum)
	}
	scope := "every channel"
	if sum.Channel != "" {
		scope = "channel " + sum.Channel
	}
	fmt.Fprintf(f.IO.Out, "App %s, %s, since %s\n\n", sum.AppID, scope, humanTime(sum.Since))
	if len(sum.Versions) == 0 {
		fmt.Fprintln(f.IO.Out, "No device reported installs or failures in this window.")
		return nil
	}
	tw := newTable(f.IO.Out)
	fmt.Fprintln(tw, "VERSION\tINSTALLED\tFAILED\tSTALLED\tRATE\tFAILURES")
	for _, v := range sum.Versions {
		var kinds []string
		for _, k := range slices.Sorted(maps.Keys(v.Failures)) {
			kinds = append(kinds, fmt.Sprintf("%s=%d", k, v.Failures[k]))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f%%\t%s\n", v.Version, v.Installed, v.Failed, v.Stalled, v.FailureRate*100, orDash(strings.Join(kinds, " ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if opts.Failures {
		return printFileFailures(f, sum.Versions)
	}
	return nil
}

// printFileFailures lists the failing files of each version that has any.
func printFileFailures(f *Factory, versions []ota.VersionStats) error {
	found := false
	for _, v := range versions {
		if len(v.Files) == 0 {
			continue
		}
		found = true
		fmt.Fprintf(f.IO.Out, "\nFailing files of %s:\n", v.Version)
		tw := newTable(f.IO.Out)
		fmt.Fprintln(tw, "FILE\tDEVICES\tFAILURES")
		for _, ff := range v.Files {
			var kinds []string
			for _, k := range slices.Sorted(maps.Keys(ff.Failures)) {
				kinds = append(kinds, fmt.Sprintf("%s=%d", k, ff.Failures[k]))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\n", ff.File, ff.Devices, strings.Join(kinds, " "))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if !found {
		fmt.Fprintln(f.IO.Out, "\nNo device reported a failing file of a delta release in this window.")
	}
	return nil
}
