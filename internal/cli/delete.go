package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// DeleteOptions are the inputs of otactl delete.
type DeleteOptions struct {
	F       *Factory
	Channel string
	Version string
}

// NewCmdDelete builds `otactl delete`.
func NewCmdDelete(f *Factory, runF func(*DeleteOptions) error) *cobra.Command {
	opts := &DeleteOptions{F: f}
	return &cobra.Command{
		Use:   "delete CHANNEL VERSION",
		Short: "Remove a release from a channel",
		Long: `Remove a release from a channel. When it was the active one, the release
deployed before it becomes active again, or the channel is left empty.
The version name stays reserved: it cannot be uploaded again with other bytes.`,
		Example:           `  otactl delete stable 1.2.0`,
		Args:              exactArgs(2),
		ValidArgsFunction: completeChannels(f, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Channel, opts.Version = args[0], args[1]
			if runF != nil {
				return runF(opts)
			}
			return deleteRun(cmd, opts)
		},
	}
}

func deleteRun(cmd *cobra.Command, opts *DeleteOptions) error {
	f := opts.F
	ctx := cmd.Context()
	client, app, err := f.AppClient(ctx)
	if err != nil {
		return err
	}
	ch, err := client.DeleteRelease(ctx, app, opts.Channel, opts.Version)
	if err != nil {
		return fmt.Errorf("delete %s from %s of %s: %w", opts.Version, opts.Channel, app, err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, ch)
	}
	serving := "the channel is now empty"
	if ch.To != "" {
		serving = "now serving " + ch.To
	}
	fmt.Fprintf(f.IO.Out, "%s: deleted %s; %s\n", ch.Channel, opts.Version, serving)
	return nil
}
