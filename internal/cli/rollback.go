package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// RollbackOptions are the inputs of otactl rollback.
type RollbackOptions struct {
	F       *Factory
	Channel string
	To      string
}

// NewCmdRollback builds `otactl rollback`.
func NewCmdRollback(f *Factory, runF func(*RollbackOptions) error) *cobra.Command {
	opts := &RollbackOptions{F: f}
	cmd := &cobra.Command{
		Use:   "rollback CHANNEL",
		Short: "Point a channel back at an earlier release",
		Long: `Point a channel back at the release deployed before the active one, or at
--to VERSION. Nothing is deleted: the newer release stays in the history and
can be promoted again. --to builtin sends devices back to the bundle shipped
inside the app.`,
		Example: `  otactl rollback stable
  otactl rollback stable --to 1.1.0`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeChannels(f, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Channel = args[0]
			if runF != nil {
				return runF(opts)
			}
			return rollbackRun(cmd, opts)
		},
	}
	cmd.Flags().StringVar(&opts.To, "to", "", "version to go back to (default: the release before the active one)")
	return cmd
}

func rollbackRun(cmd *cobra.Command, opts *RollbackOptions) error {
	f := opts.F
	ctx := cmd.Context()
	client, app, err := f.AppClient(ctx)
	if err != nil {
		return err
	}
	ch, err := client.Rollback(ctx, app, opts.Channel, opts.To)
	if err != nil {
		return fmt.Errorf("roll back %s of %s: %w", opts.Channel, app, err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, ch)
	}
	fmt.Fprintf(f.IO.Out, "%s: %s → %s\n", ch.Channel, orDash(ch.From), orDash(ch.To))
	return nil
}
