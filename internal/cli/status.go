package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/pkg/ota"
)

// StatusOptions are the inputs of otactl status.
type StatusOptions struct {
	F *Factory
}

// Status is what `otactl status -o json` prints.
type Status struct {
	Server   string        `json:"server"`
	App      ota.App       `json:"app"`
	Channels []ota.Channel `json:"channels"`
}

// NewCmdStatus builds `otactl status`.
func NewCmdStatus(f *Factory, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{F: f}
	return &cobra.Command{
		Use:   "status",
		Short: "Show what each channel serves now",
		Long: `Show, for every channel of the app, the bundle devices are offered now:
version, SHA-256, size, when it was deployed and its download URL.`,
		Example: `  otactl status
  otactl status -o json | jq -r '.channels[] | "\(.name) \(.active)"'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return statusRun(cmd, opts)
		},
	}
}

func statusRun(cmd *cobra.Command, opts *StatusOptions) error {
	f := opts.F
	ctx := cmd.Context()
	client, a, chans, err := appChannels(ctx, f)
	if err != nil {
		return err
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, Status{Server: client.BaseURL, App: a, Channels: chans})
	}
	fmt.Fprintf(f.IO.Out, "App %s on %s (default channel: %s)\n\n", a.ID, client.BaseURL, orDash(a.DefaultChannel))
	tw := newTable(f.IO.Out)
	fmt.Fprintln(tw, "CHANNEL\tVERSION\tSHA256\tSIZE\tDEPLOYED\tURL")
	for _, c := range chans {
		b := c.ActiveBundle
		if b == nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\n", c.Name, orDash(c.Active))
			continue
		}
		deployed := b.UploadedAt
		for _, r := range c.Releases {
			if r.Version == c.Active {
				deployed = r.DeployedAt
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Active, short(b.SHA256), humanBytes(b.Size),
			humanTime(deployed), orDash(b.URL))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Staged and halted rollouts change what devices get: say so.
	var notes []string
	for _, c := range chans {
		if c.Rollout != nil && (c.Rollout.InEffect(c.Active) || c.Rollout.Halted) {
			notes = append(notes, c.Name+": "+rolloutSummary(c))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(f.IO.Out, "\n%s\n", strings.Join(notes, "\n"))
	}
	return nil
}

// appChannels reads the app the command is about and its channels: what
// both status and channels print.
func appChannels(ctx context.Context, f *Factory) (*ota.Client, ota.App, []ota.Channel, error) {
	client, app, err := f.AppClient(ctx)
	if err != nil {
		return nil, ota.App{}, nil, err
	}
	a, err := client.App(ctx, app)
	if err != nil {
		return nil, ota.App{}, nil, fmt.Errorf("read app %s: %w", app, err)
	}
	chans, err := client.Channels(ctx, app)
	if err != nil {
		return nil, ota.App{}, nil, fmt.Errorf("list channels of %s: %w", app, err)
	}
	return client, a, chans, nil
}
