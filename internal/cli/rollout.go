package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/pkg/ota"
)

// RolloutOptions are the inputs of otactl rollout.
type RolloutOptions struct {
	F       *Factory
	Channel string
	Request ota.RolloutRequest
	// The ramp's flags.
	Ramp       string
	Every      time.Duration
	MinDevices int
}

// NewCmdRollout builds `otactl rollout`.
func NewCmdRollout(f *Factory, runF func(*RolloutOptions) error) *cobra.Command {
	opts := &RolloutOptions{F: f}
	cmd := &cobra.Command{
		Use:   "rollout CHANNEL PERCENT|pause|resume|complete",
		Short: "Grow, pause, resume, complete or schedule a staged rollout",
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
(see the channel's halt_on_failure_rate and min_devices), or stall: they
were offered the bundle and keep polling on the old one without a word
(stalled installs, see otactl channel set --stalled-window).

--ramp schedules the steps instead: otad grows the rollout to each percent
in turn once the step before has lasted --every, at least --min-devices
distinct devices reported the bundle, and its failure and stalled rates are
under the channel's halt threshold. Otherwise the ramp holds (an event, a
webhook and a line in otactl status say why) until they are; it halts when
the halt policy says so. pause suspends the schedule, resume takes it up
again (each step lasting its whole interval), and a PERCENT, complete or a
rollback cancels it. One otad runs the schedule, also with several
replicas.`,
		Example: `  otactl rollout stable 50
  otactl rollout stable pause
  otactl rollout stable complete
  otactl rollout stable --ramp 5,25,50,100 --every 2h --min-devices 200`,
		// With --ramp the channel alone: the ramp says what to do.
		Args: func(cmd *cobra.Command, args []string) error {
			if rampFlags(cmd) {
				if len(args) > 1 {
					return flagErrorf("--ramp schedules the steps: give no PERCENT or action with it")
				}
				return checkArgCount(cmd, args, 1, 1)
			}
			return checkArgCount(cmd, args, 2, 2)
		},
		ValidArgsFunction: completeChannels(f, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Channel = args[0]
			if rampFlags(cmd) {
				req, err := rampRequest(opts)
				if err != nil {
					return err
				}
				opts.Request = ota.RolloutRequest{Action: ota.RolloutRamp, Ramp: req}
				if runF != nil {
					return runF(opts)
				}
				return rolloutRun(cmd, opts)
			}
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
	cmd.Flags().StringVar(&opts.Ramp, "ramp", "", "schedule the steps: increasing percents ending at 100, e.g. 5,25,50,100")
	cmd.Flags().DurationVar(&opts.Every, "every", 0, "how long each step of the ramp lasts at least, e.g. 2h (at least 1m)")
	cmd.Flags().IntVar(&opts.MinDevices, "min-devices", 0, "distinct devices that must report the bundle before each step")
	return cmd
}

// rampFlags reports whether a ramp flag was given.
func rampFlags(cmd *cobra.Command) bool {
	fs := cmd.Flags()
	return fs.Changed("ramp") || fs.Changed("every") || fs.Changed("min-devices")
}

// rampRequest reads the ramp's flags.
func rampRequest(opts *RolloutOptions) (*ota.RampRequest, error) {
	if opts.Ramp == "" || opts.Every == 0 {
		return nil, flagErrorf("a ramp needs its steps and their interval: --ramp 5,25,50,100 --every 2h")
	}
	req := &ota.RampRequest{EverySeconds: int64(opts.Every / time.Second), MinDevices: opts.MinDevices}
	for _, p := range strings.Split(opts.Ramp, ",") {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(p), "%"))
		if err != nil {
			return nil, flagErrorf("--ramp %q: %q is not a percent", opts.Ramp, p)
		}
		req.Steps = append(req.Steps, n)
	}
	if err := req.Check(); err != nil {
		return nil, flagErrorf("--ramp: %v", err)
	}
	return req, nil
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
	line := fmt.Sprintf("%s to %d%% of devices; the others keep %s", r.Target, r.Percent, orDash(r.Previous))
	if rp := r.Ramp; rp != nil && !rp.Done() {
		next := rp.Steps[rp.Step+1]
		switch {
		case rp.Held != "":
			line += fmt.Sprintf("; ramp HOLDS before %d%% since %s: %s", next, humanTime(rp.HeldAt), rp.Held)
		default:
			line += fmt.Sprintf("; ramp to %d%% at %s (then %s)", next, humanTime(rp.NextAt()), percents(rp.Steps[rp.Step+1:]))
		}
	}
	return line
}

func percents(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p) + "%"
	}
	return strings.Join(s, ", ")
}
