package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/pkg/ota"
)

// PromoteOptions are the inputs of otactl promote.
type PromoteOptions struct {
	F       *Factory
	Version string
	From    string
	To      string
}

// NewCmdPromote builds `otactl promote`.
func NewCmdPromote(f *Factory, runF func(*PromoteOptions) error) *cobra.Command {
	opts := &PromoteOptions{F: f}
	cmd := &cobra.Command{
		Use:   "promote VERSION --from CHANNEL --to CHANNEL",
		Short: "Make a release of one channel active on another",
		Long: `Make VERSION, a release of channel --from, the active release of channel
--to (created when missing). The bundle is not uploaded again: both channels
serve the same bytes.`,
		Example: `  otactl promote 1.2.0 --from beta --to stable`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Version = args[0]
			if opts.From == "" || opts.To == "" {
				return flagErrorf("both --from and --to are required")
			}
			if opts.From == opts.To {
				return flagErrorf("--from and --to name the same channel %q", opts.From)
			}
			if runF != nil {
				return runF(opts)
			}
			return promoteRun(cmd, opts)
		},
	}
	cmd.Flags().StringVar(&opts.From, "from", "", "channel the version is deployed on")
	cmd.Flags().StringVar(&opts.To, "to", "", "channel to make it active on")
	return cmd
}

func promoteRun(cmd *cobra.Command, opts *PromoteOptions) error {
	f := opts.F
	ctx := cmd.Context()
	client, app, err := f.AppClient(ctx)
	if err != nil {
		return err
	}
	ch, err := client.Promote(ctx, app, opts.To, ota.PromoteRequest{From: opts.From, Version: opts.Version})
	if err != nil {
		return fmt.Errorf("promote %s from %s to %s: %w", opts.Version, opts.From, opts.To, err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, ch)
	}
	fmt.Fprintf(f.IO.Out, "%s: %s → %s (from %s)\n", ch.Channel, orDash(ch.From), orDash(ch.To), opts.From)
	return nil
}
