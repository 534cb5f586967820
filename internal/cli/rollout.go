package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/pkg/ota"
)

// RolloutOptions are the inputs of otactl rollout.
type RolloutOptions struct {
	F       *Factory
	Channel string
	Request ota.RolloutRequest
}

// NewCmdRollout builds `otactl rollout`.
func NewCmdRollout(f *Factory, runF func(*RolloutOptions) error) *cobra.Command {
	opts := &RolloutOptions{F: f}
	cmd := &cobra.Command{
		Use:   "rollout CHANNEL PERCENT|pause|resume|complete",
		Short: "Grow, pause, resume or complete a staged rollout",
		Long: `Change the staged rollout of the bundle a channel serves. Start one with
"otactl deploy web VERSION --rollout 10": only that share of devices is
offered the new bundle, the others keep the previous one. A device's place
in the rollout is fixed by its device id, so a device that got the bundle at
10% still has it at 50%.

  PERCENT   offer the bundle to that share of devices (it only grows,
            unless the rollout is paused)
  pause     offer it to no new device; devices that have it keep it
  resume    continue a paused (or halted in place) rollout
  complete  offer it to every device

otad halts a rollout by itself when too many devices report failures
(see the channel's halt_on_failure_rate and min_devices).`,
		Example: `  otactl rollout stable 50
  otactl rollout stable pause
  otactl rollout stable complete`,
		Args:              exactArgs(2),
		ValidArgsFunction: completeChannels(f, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Channel = args[0]
			switch a := strings.ToLower(args[1]); a {
			case ota.RolloutPause, ota.RolloutResume, ota.RolloutComplete:
				opts.Request = ota.RolloutRequest{Action: a}
			default:
				n, err := strconv.Atoi(strings.TrimSuffix(a, "%"))
				if err != nil || n < 0 || n > 100 {
					return flagErrorf("%q is neither a percent from 0 to 100 nor pause, resume or complete", args[1])
				}
				opts.Request = ota.RolloutRequest{Action: ota.RolloutSet, Percent: n}
			}
			if runF != nil {
				return runF(opts)
			}
			return rolloutRun(cmd, opts)
		},
	}
	return cmd
}

func rolloutRun(cmd *cobra.Command, opts *RolloutOptions) error {
	f := opts.F
	ctx := cmd.Context()
	client, app, err := f.AppClient(ctx)
	if err != nil {
		return err
	}
	ch, err := client.SetRollout(ctx, app, opts.Channel, opts.Request)
	if err != nil {
		return fmt.Errorf("change the rollout of %s of %s: %w", opts.Channel, app, err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, ch)
	}
	fmt.Fprintf(f.IO.Out, "%s: %s\n", ch.Name, rolloutSummary(ch))
	return nil
}

// rolloutSummary describes a channel's rollout in one line.
func rolloutSummary(ch ota.Channel) string {
	r := ch.Rollout
	switch {
	case r == nil:
		return orDash(ch.Active) + " to every device"
	case r.Halted:
		return fmt.Sprintf("rollout of %s HALTED at %d%% (%s); serving %s", r.Target, r.Percent, r.Reason, orDash(ch.Active))
	case r.Target != ch.Active:
		return orDash(ch.Active) + " to every device"
	case r.Paused:
		return fmt.Sprintf("%s to %d%% of devices, paused; the others keep %s", r.Target, r.Percent, orDash(r.Previous))
	case r.Percent >= 100:
		return r.Target + " to every device (rollout complete)"
	}
	return fmt.Sprintf("%s to %d%% of devices; the others keep %s", r.Target, r.Percent, orDash(r.Previous))
}
