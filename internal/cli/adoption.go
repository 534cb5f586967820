package cli

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/pkg/ota"
)

// AdoptionOptions are the inputs of otactl adoption.
type AdoptionOptions struct {
	F       *Factory
	Channel string
	Since   string
}

// NewCmdAdoption builds `otactl adoption`.
func NewCmdAdoption(f *Factory, runF func(*AdoptionOptions) error) *cobra.Command {
	opts := &AdoptionOptions{F: f}
	cmd := &cobra.Command{
		Use:   "adoption [CHANNEL]",
		Short: "Show how many devices run each version, day by day",
		Long: `Show, per UTC day, how many distinct devices checked for updates and which
bundle version their latest check of the day ran: each version's devices
and share, the built-in bundle ("builtin") and versions otad does not have
("unknown") included, with a small chart. With CHANNEL, only the devices
served from that channel; without, every channel of the app. otad keeps 90
days; today's counts grow as devices check.

Counts are exact while otad's device memory holds every device seen that
day (two million by default); past that they are estimates, marked "~".
-o json gives the series.`,
		Example: `  otactl adoption
  otactl adoption stable --since 30d
  otactl adoption -o json | jq '.days[-1].versions'`,
		Args:              maxArgs(1),
		ValidArgsFunction: completeChannels(f, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Channel = args[0]
				if err := ota.ValidateChannel(opts.Channel); err != nil {
					return flagErrorf("%v", err)
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return adoptionRun(cmd, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Since, "since", "7d", "how far back: days (30d), weeks (2w) or a duration (48h); at most 90d")
	return cmd
}

func adoptionRun(cmd *cobra.Command, opts *AdoptionOptions) error {
	f := opts.F
	back, err := parseLifetime(opts.Since)
	if err != nil {
		return flagErrorf("--since: %v", err)
	}
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	ctx := cmd.Context()
	client, app, err := f.AppClient(ctx)
	if err != nil {
		return err
	}
	rep, err := client.Adoption(ctx, app, opts.Channel, now().Add(-back))
	if err != nil {
		return fmt.Errorf("read adoption of %s: %w", app, err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, rep)
	}
	scope := "every channel"
	if rep.Channel != "" {
		scope = "channel " + rep.Channel
	}
	fmt.Fprintf(f.IO.Out, "App %s, %s, devices by the version of their latest check each day (UTC)\n\n", rep.AppID, scope)
	if len(rep.Days) == 0 {
		fmt.Fprintln(f.IO.Out, "No device checked for updates since "+rep.Since.Format(time.DateOnly)+".")
		return nil
	}
	return printAdoption(f.IO.Out, rep)
}

// adoptionColumns is how many versions get a column; the rest add up in
// "other".
const adoptionColumns = 5

// chartMarks tell the versions apart in the chart, most devices first.
var chartMarks = []rune{'█', '▓', '▒', '░', '#', '·'}

const chartWidth = 40

// printAdoption prints the table and the chart of a report.
func printAdoption(w io.Writer, rep ota.AdoptionReport) error {
	totals := map[string]int{}
	for _, d := range rep.Days {
		for _, v := range d.Versions {
			totals[v.Version] += v.Devices
		}
	}
	cols := make([]string, 0, len(totals))
	for v := range totals {
		cols = append(cols, v)
	}
	slices.SortFunc(cols, func(a, b string) int { return cmp.Or(totals[b]-totals[a], strings.Compare(a, b)) })
	other := len(cols) > adoptionColumns
	if other {
		cols = cols[:adoptionColumns-1]
	}
	col := map[string]int{}
	for i, v := range cols {
		col[v] = i
	}
	n := len(cols)
	if other {
		n++
	}
	tw := newTable(w)
	head := []string{"DAY", "DEVICES"}
	for _, v := range cols {
		head = append(head, strings.ToUpper(v))
	}
	if other {
		head = append(head, "OTHER")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	shares := make([][]float64, len(rep.Days))
	for i, d := range rep.Days {
		row := make([]float64, n)
		est := make([]bool, n)
		counts := make([]int, n)
		for _, v := range d.Versions {
			j, ok := col[v.Version]
			if !ok {
				j = n - 1
			}
			row[j] += v.Share
			counts[j] += v.Devices
			est[j] = est[j] || v.Estimated
		}
		shares[i] = row
		cells := []string{d.Day.Format(time.DateOnly), fmt.Sprint(d.Devices)}
		for j := range row {
			mark := ""
			if est[j] {
				mark = "~"
			}
			cells = append(cells, fmt.Sprintf("%s%d (%.0f%%)", mark, counts[j], row[j]*100))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for i, d := range rep.Days {
		var bar strings.Builder
		used := 0
		for j, s := range shares[i] {
			k := int(s*chartWidth + 0.5)
			if j == len(shares[i])-1 {
				k = max(0, min(k, chartWidth-used))
			}
			k = min(k, chartWidth-used)
			bar.WriteString(strings.Repeat(string(chartMarks[min(j, len(chartMarks)-1)]), k))
			used += k
		}
		fmt.Fprintf(w, "%s │%s%s│\n", d.Day.Format("01-02"), bar.String(), strings.Repeat(" ", chartWidth-used))
	}
	var legend []string
	for j, v := range cols {
		legend = append(legend, string(chartMarks[min(j, len(chartMarks)-1)])+" "+v)
	}
	if other {
		legend = append(legend, string(chartMarks[min(n-1, len(chartMarks)-1)])+" other")
	}
	fmt.Fprintf(w, "      %s\n", strings.Join(legend, "  "))
	return nil
}
