package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/pkg/ota"
)

// HistoryOptions are the inputs of otactl history.
type HistoryOptions struct {
	F       *Factory
	Channel string
	Limit   int
	Before  uint64
}

// NewCmdHistory builds `otactl history`.
func NewCmdHistory(f *Factory, runF func(*HistoryOptions) error) *cobra.Command {
	opts := &HistoryOptions{F: f}
	cmd := &cobra.Command{
		Use:   "history [CHANNEL]",
		Short: "Show who uploaded, deployed and rolled back what",
		Long: `Show the app's history, newest first: uploads, rollbacks, promotions,
deletions and policy changes, with who did them. Give a channel to see only
its events. When there are more, the next page starts at --before SEQ.`,
		Example: `  otactl history
  otactl history stable --limit 5
  otactl history --before 120 -o json`,
		Args:              maxArgs(1),
		ValidArgsFunction: completeChannels(f, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Channel = args[0]
			}
			if opts.Limit < 0 {
				return flagErrorf("--limit must not be negative")
			}
			if runF != nil {
				return runF(opts)
			}
			return historyRun(cmd, opts)
		},
	}
	cmd.Flags().IntVar(&opts.Limit, "limit", 20, "number of events to show")
	cmd.Flags().Uint64Var(&opts.Before, "before", 0, "show events older than this sequence number")
	return cmd
}

func historyRun(cmd *cobra.Command, opts *HistoryOptions) error {
	f := opts.F
	ctx := cmd.Context()
	client, app, err := f.AppClient(ctx)
	if err != nil {
		return err
	}
	page, err := client.History(ctx, app, opts.Channel, opts.Before, opts.Limit)
	if err != nil {
		return fmt.Errorf("read history of %s: %w", app, err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, page)
	}
	if len(page.Events) == 0 {
		fmt.Fprintln(f.IO.ErrOut, "No history yet.")
		return nil
	}
	if err := printEvents(f, page.Events); err != nil {
		return err
	}
	if page.Next != 0 {
		fmt.Fprintf(f.IO.ErrOut, "More: otactl history --before %d\n", page.Next)
	}
	return nil
}

// printEvents prints history events as a table, newest first as given.
func printEvents(f *Factory, events []ota.Event) error {
	tw := newTable(f.IO.Out)
	fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tEVENT\tCHANNEL\tVERSION\tDETAIL")
	for _, e := range events {
		var detail []string
		if e.From != "" || e.To != "" {
			detail = append(detail, orDash(e.From)+" → "+orDash(e.To))
		}
		if e.SHA256 != "" {
			detail = append(detail, "sha256 "+short(e.SHA256))
		}
		if e.Note != "" {
			detail = append(detail, e.Note)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, humanTime(e.Time), orDash(e.Actor), e.Type,
			orDash(e.Channel), orDash(e.Version), orDash(strings.Join(detail, "; ")))
	}
	return tw.Flush()
}
