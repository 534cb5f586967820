package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// ChannelsOptions are the inputs of otactl channels.
type ChannelsOptions struct {
	F *Factory
}

// NewCmdChannels builds `otactl channels`.
func NewCmdChannels(f *Factory, runF func(*ChannelsOptions) error) *cobra.Command {
	opts := &ChannelsOptions{F: f}
	return &cobra.Command{
		Use:     "channels",
		Aliases: []string{"channel", "ch"},
		Short:   "List the app's channels",
		Long: `List the app's channels: their kind (web or apk), the active version,
how many releases they hold, and which one devices get by default.`,
		Example: `  otactl channels
  otactl channels --app-id com.example.app -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return channelsRun(cmd, opts)
		},
	}
}

func channelsRun(cmd *cobra.Command, opts *ChannelsOptions) error {
	f := opts.F
	ctx := cmd.Context()
	_, a, chans, err := appChannels(ctx, f)
	if err != nil {
		return err
	}
	app := a.ID
	if f.JSON() {
		return writeJSON(f.IO.Out, chans)
	}
	if len(chans) == 0 {
		fmt.Fprintf(f.IO.ErrOut, "%s has no channels yet; create one with: otactl deploy web\n", app)
		return nil
	}
	tw := newTable(f.IO.Out)
	fmt.Fprintln(tw, "CHANNEL\tKIND\tACTIVE\tRELEASES\tDEFAULT\tSELF-SET\tUPDATED")
	for _, c := range chans {
		def := ""
		if c.Name == a.DefaultChannel {
			def = "yes"
		}
		self := ""
		if c.Policy.AllowSelfSet {
			self = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", c.Name, c.Kind, orDash(c.Active), len(c.Releases),
			orDash(def), orDash(self), humanTime(c.UpdatedAt))
	}
	return tw.Flush()
}
