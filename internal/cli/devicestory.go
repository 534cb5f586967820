package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/otaship/ota/pkg/ota"
)

// DeviceStoryOptions are the inputs of otactl device DEVICE_ID.
type DeviceStoryOptions struct {
	F      *Factory
	Device string
}

func deviceStoryRun(ctx context.Context, opts *DeviceStoryOptions) error {
	f := opts.F
	client, app, err := f.AppClient(ctx)
	if err != nil {
		return err
	}
	st, err := client.DeviceStory(ctx, app, opts.Device)
	if err != nil {
		return fmt.Errorf("read the story of device %s of %s: %w", opts.Device, app, err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, st)
	}
	out := f.IO.Out
	fmt.Fprintf(out, "Device %s of %s\n", st.DeviceID, st.AppID)
	if !st.Known {
		fmt.Fprintln(out, "  otad remembers no update check of this device (never checked, or forgotten: it keeps the devices checked most recently).")
	}
	if st.Pin != "" {
		fmt.Fprintf(out, "  pinned to channel %s\n", st.Pin)
	}
	if lc := st.LastCheck; lc != nil {
		build := "production build"
		if !lc.Prod {
			build = "development build"
		}
		if lc.Emulator {
			build += " on an emulator"
		}
		fmt.Fprintf(out, "  last check  %s, running %s on channel %s (chosen by %s)\n", humanTime(lc.At), lc.Running, orDash(lc.Channel), orDash(lc.Source))
		fmt.Fprintf(out, "              native %s, plugin %s, %s, %s\n", orDash(lc.Native), orDash(lc.Plugin), orDash(lc.Platform), build)
	}
	if o := st.Offer; o != nil {
		fmt.Fprintf(out, "  offered     %s on channel %s, %d times from %s to %s", o.Version, o.Channel, o.Count, humanTime(o.First), humanTime(o.Last))
		if o.Previous != "" {
			fmt.Fprintf(out, " (before it: %s)", o.Previous)
		}
		fmt.Fprintln(out)
		var did []string
		for _, x := range []struct {
			on   bool
			text string
		}{{o.Downloaded, "downloaded it"}, {o.Installed, "reported installing it"}, {o.Ran, "checked while running it"}, {o.Failed, "reported a failure of it"}} {
			if x.on {
				did = append(did, x.text)
			}
		}
		if len(did) == 0 {
			did = append(did, "said nothing about it")
		}
		fmt.Fprintf(out, "              the device %s\n", strings.Join(did, ", "))
		if o.Stalled {
			fmt.Fprintf(out, "  STALLED     offered %s and kept polling on another version past the channel's window: a silent failure\n", o.Version)
		}
	}
	if len(st.Reports) > 0 {
		fmt.Fprintf(out, "\nReports since %s, newest first:\n", humanTime(st.ReportsSince))
		tw := newTable(out)
		fmt.Fprintln(tw, "TIME\tACTION\tVERSION")
		for _, r := range st.Reports {
			v := r.VersionName
			if r.Unverified {
				v += " (not offered to it: counts for nothing)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", humanTime(r.Time), r.Action, v)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "\nNo report since %s.\n", humanTime(st.ReportsSince))
	}
	if ex := st.Explain; ex != nil {
		fmt.Fprintln(out, "\nIts next check, as otactl explain decides it:")
		printExplainSummary(f, *ex)
	}
	return nil
}

// printExplainSummary prints an explanation's answer and steps.
func printExplainSummary(f *Factory, ex ota.ExplainResponse) {
	out := f.IO.Out
	if r := ex.Response; r.Error != "" {
		fmt.Fprintf(out, "  answer: %s (%s): %s\n", r.Error, r.Kind, r.Message)
	} else {
		fmt.Fprintf(out, "  answer: offer %s from channel %s\n", r.Version, orDash(ex.Channel))
	}
	for i, s := range ex.Steps {
		fmt.Fprintf(out, "  %2d. %s\n", i+1, s)
	}
}
