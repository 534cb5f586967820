package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/otaship/ota/pkg/ota"
)

// NewCmdChannel builds `otactl channel`: alone (or as "channels") it lists
// the channels, as it always did; its subcommands change them.
func NewCmdChannel(f *Factory) *cobra.Command {
	opts := &ChannelsOptions{F: f}
	cmd := &cobra.Command{
		Use:     "channel",
		Aliases: []string{"channels", "ch"},
		Short:   "List the app's channels and set their policies",
		Long: `List the app's channels: their kind (web or apk), the active version,
how many releases they hold, and which one devices get by default.
"otactl channel" and "otactl channels" alone list them too.

Channels are created by the first deploy (or promote) to them; otactl
channel set changes who they update and how.`,
		Example: `  otactl channels
  otactl channel set beta --allow-self-set
  otactl channel list --app-id com.example.app -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return channelsRun(cmd, opts) },
	}
	cmd.AddCommand(NewCmdChannelList(f, nil), NewCmdChannelSet(f, nil))
	return cmd
}

// ChannelsOptions are the inputs of otactl channel list.
type ChannelsOptions struct {
	F *Factory
}

// NewCmdChannelList builds `otactl channel list`.
func NewCmdChannelList(f *Factory, runF func(*ChannelsOptions) error) *cobra.Command {
	opts := &ChannelsOptions{F: f}
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the app's channels",
		Long: `List the app's channels: their kind (web or apk), the active version,
how many releases they hold, and which one devices get by default.`,
		Example: `  otactl channel list
  otactl channel list --app-id com.example.app -o json`,
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

// ChannelSetOptions are the inputs of otactl channel set.
type ChannelSetOptions struct {
	F       *Factory
	Channel string
	Patch   ota.ChannelPolicyPatch
}

// ChannelSetResult is what `otactl channel set -o json` prints: the channel
// after the change and the history events the change recorded.
type ChannelSetResult struct {
	Channel ota.Channel `json:"channel"`
	Events  []ota.Event `json:"events"`
}

// policyFlag is one flag of channel set and the patch field it fills.
type policyFlag struct {
	register func(fs *pflag.FlagSet)
	// apply fills the field when the flag was given.
	apply func(fs *pflag.FlagSet) error
}

// policyFlags are channel set's flags, one per field of
// ota.ChannelPolicyPatch. A new policy field is one more line here.
func policyFlags(p *ota.ChannelPolicyPatch) []policyFlag {
	return []policyFlag{
		boolPolicy("default", "make it the app's default channel, which devices naming none get (the public channel); --default=false leaves the app with none", &p.Default),
		boolPolicy("allow-self-set", "let devices choose it themselves (setChannel, defaultChannel)", &p.AllowSelfSet),
		boolPolicy("ios", "offer updates to iOS devices", &p.IOS),
		boolPolicy("android", "offer updates to Android devices", &p.Android),
		boolPolicy("electron", "offer updates to Electron apps", &p.Electron),
		stringPolicy("disable-auto-update", "no automatic update across this: none, major, minor, patch or version_number", &p.DisableAutoUpdate,
			func(v string) error {
				switch v {
				case ota.DisableNone, ota.DisableMajor, ota.DisableMinor, ota.DisablePatch, ota.DisableVersionNumber:
					return nil
				}
				return fmt.Errorf("%q is not none, major, minor, patch or version_number", v)
			}),
		boolPolicy("disable-auto-update-under-native", "never offer a bundle older than the device's native version", &p.DisableAutoUpdateUnderNative),
		boolPolicy("allow-prod", "offer updates to production builds", &p.AllowProd),
		boolPolicy("allow-dev", "offer updates to development builds", &p.AllowDev),
		boolPolicy("allow-device", "offer updates to physical devices", &p.AllowDevice),
		boolPolicy("allow-emulator", "offer updates to emulators", &p.AllowEmulator),
		boolPolicy("auto-halt", "halt a release by itself when too many devices report failures", &p.AutoHalt),
		{
			register: func(fs *pflag.FlagSet) {
				fs.String("halt-on-failure-rate", "", "failure share that halts a release: 0.2 or 20%")
			},
			apply: func(fs *pflag.FlagSet) error {
				if !fs.Changed("halt-on-failure-rate") {
					return nil
				}
				s, _ := fs.GetString("halt-on-failure-rate")
				r, err := parseRate(s)
				if err != nil {
					return flagErrorf("--halt-on-failure-rate: %v", err)
				}
				p.HaltOnFailureRate = &r
				return nil
			},
		},
		boolPolicy("protected", "take deploys, promotions and rollout steps only from user logins and CI tokens made with --protected (rollback and pause stay open)", &p.Protected),
		{
			register: func(fs *pflag.FlagSet) {
				fs.Duration("stalled-window", 0, "how long a device offered a release may keep polling on another before its install counts as stalled (default 30m)")
			},
			apply: func(fs *pflag.FlagSet) error {
				if !fs.Changed("stalled-window") {
					return nil
				}
				d, _ := fs.GetDuration("stalled-window")
				if d < time.Minute || d > 7*24*time.Hour {
					return flagErrorf("--stalled-window %s: must be between 1m and 168h", d)
				}
				secs := int64(d / time.Second)
				p.StalledWindowSeconds = &secs
				return nil
			},
		},
		{
			register: func(fs *pflag.FlagSet) {
				fs.Int("stalled-polls", 0, "checks on another version after the offer that a stalled install takes at least (default 3)")
			},
			apply: func(fs *pflag.FlagSet) error {
				if !fs.Changed("stalled-polls") {
					return nil
				}
				n, _ := fs.GetInt("stalled-polls")
				if n < 1 || n > 1000 {
					return flagErrorf("--stalled-polls %d: must be between 1 and 1000", n)
				}
				p.StalledPolls = &n
				return nil
			},
		},
		{
			register: func(fs *pflag.FlagSet) {
				fs.Bool("halt-on-stalled", true, "count stalled installs (silent failures) toward auto-halt like failures")
			},
			apply: func(fs *pflag.FlagSet) error {
				if fs.Changed("halt-on-stalled") {
					v, _ := fs.GetBool("halt-on-stalled")
					ignore := !v
					p.IgnoreStalled = &ignore
				}
				return nil
			},
		},
		{
			register: func(fs *pflag.FlagSet) {
				fs.Int("min-devices", 0, "devices that must report before auto-halt judges a release (at least 1)")
			},
			apply: func(fs *pflag.FlagSet) error {
				if !fs.Changed("min-devices") {
					return nil
				}
				n, _ := fs.GetInt("min-devices")
				if n < 1 {
					return flagErrorf("--min-devices %d: must be at least 1", n)
				}
				p.MinDevices = &n
				return nil
			},
		},
	}
}

func boolPolicy(name, usage string, field **bool) policyFlag {
	return policyFlag{
		register: func(fs *pflag.FlagSet) { fs.Bool(name, false, usage) },
		apply: func(fs *pflag.FlagSet) error {
			if fs.Changed(name) {
				v, _ := fs.GetBool(name)
				*field = &v
			}
			return nil
		},
	}
}

func stringPolicy(name, usage string, field **string, check func(string) error) policyFlag {
	return policyFlag{
		register: func(fs *pflag.FlagSet) { fs.String(name, "", usage) },
		apply: func(fs *pflag.FlagSet) error {
			if !fs.Changed(name) {
				return nil
			}
			v, _ := fs.GetString(name)
			if err := check(v); err != nil {
				return flagErrorf("--%s: %v", name, err)
			}
			*field = &v
			return nil
		},
	}
}

// parseRate reads a share as 0.2 or 20%.
func parseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	div := 1.0
	if t, ok := strings.CutSuffix(s, "%"); ok {
		s, div = t, 100
	}
	r, err := strconv.ParseFloat(s, 64)
	if err != nil || r/div <= 0 || r/div > 1 {
		return 0, fmt.Errorf("%q is not a share above 0 and at most 1 (0.2) or a percent (20%%)", s)
	}
	return r / div, nil
}

// NewCmdChannelSet builds `otactl channel set`.
func NewCmdChannelSet(f *Factory, runF func(*ChannelSetOptions) error) *cobra.Command {
	opts := &ChannelSetOptions{F: f}
	flags := policyFlags(&opts.Patch)
	cmd := &cobra.Command{
		Use:   "set CHANNEL",
		Short: "Change a channel's policy: platforms, self-assignment, default, auto-update limits, auto-halt",
		Long: `Change the policy of an existing channel. Only the flags given change;
boolean flags take =false to turn a rule off (--ios=false). otad records the
change in the history, shown after it, and devices see it at their next
check.

--default makes the channel the app's public one, which devices that name
no channel get (an app has one). --allow-self-set lets devices pick the
channel themselves (setChannel, or their defaultChannel setting). The other
flags limit which platforms, builds and versions are updated, and when a
failing release halts by itself (auto-halt). A device offered a release that
keeps polling on another version for --stalled-window and --stalled-polls
checks, without installing it or reporting a failure, is a stalled install
(a silent failure); --halt-on-stalled=false shows them without counting them
toward the halt. --protected keeps CI tokens without the protected scope
from deploying, promoting and stepping rollouts there; rolling back and
pausing stay open to every admin.

Channels are created by their first deploy; list them with otactl channels.`,
		Example: `  otactl channel set beta --allow-self-set
  otactl channel set stable --ios=false
  otactl channel set stable --disable-auto-update major --default
  otactl channel set stable --halt-on-failure-rate 10% --min-devices 200 -o json
  otactl channel set stable --protected --stalled-window 1h --stalled-polls 5`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeChannels(f, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Channel = args[0]
			if err := ota.ValidateChannel(opts.Channel); err != nil {
				return flagErrorf("%v", err)
			}
			for _, pf := range flags {
				if err := pf.apply(cmd.Flags()); err != nil {
					return err
				}
			}
			if opts.Patch == (ota.ChannelPolicyPatch{}) {
				return flagErrorf("nothing to change: give at least one policy flag, e.g. otactl channel set %s --allow-self-set (see --help)", opts.Channel)
			}
			if runF != nil {
				return runF(opts)
			}
			return channelSetRun(cmd.Context(), opts)
		},
	}
	for _, pf := range flags {
		pf.register(cmd.Flags())
	}
	cmd.Flags().SortFlags = false
	return cmd
}

func channelSetRun(ctx context.Context, opts *ChannelSetOptions) error {
	f := opts.F
	client, app, err := f.AppClient(ctx)
	if err != nil {
		return err
	}
	since, err := newestSeq(ctx, client, app)
	if err != nil {
		return err
	}
	ch, err := client.PatchChannel(ctx, app, opts.Channel, opts.Patch)
	if err != nil {
		return fmt.Errorf("set the policy of %s of %s: %w", opts.Channel, app, err)
	}
	events, err := eventsSince(ctx, client, app, opts.Channel, since)
	if err != nil {
		return err
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, ChannelSetResult{Channel: ch, Events: events})
	}
	if len(events) == 0 {
		fmt.Fprintf(f.IO.ErrOut, "%s: nothing changed; the policy already said so\n", ch.Name)
	} else {
		if err := printEvents(f, events); err != nil {
			return err
		}
		fmt.Fprintln(f.IO.Out)
	}
	printPolicy(f, ch)
	return nil
}

// printPolicy prints a channel's policy, one rule a line.
func printPolicy(f *Factory, ch ota.Channel) {
	p := ch.Policy
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	var platforms []string
	for _, pl := range []struct {
		name string
		on   bool
	}{{"ios", p.IOS}, {"android", p.Android}, {"electron", p.Electron}} {
		if pl.on {
			platforms = append(platforms, pl.name)
		}
	}
	tw := newTable(f.IO.Out)
	fmt.Fprintf(tw, "%s (%s, active %s)\n", ch.Name, ch.Kind, orDash(ch.Active))
	fmt.Fprintf(tw, "  default:\t%s\n", yes(ch.Public))
	fmt.Fprintf(tw, "  self-set:\t%s\n", yes(p.AllowSelfSet))
	fmt.Fprintf(tw, "  platforms:\t%s\n", orDash(strings.Join(platforms, ", ")))
	fmt.Fprintf(tw, "  disable auto-update:\t%s (under native: %s)\n", orDash(p.DisableAutoUpdate), yes(p.DisableAutoUpdateUnderNative))
	fmt.Fprintf(tw, "  builds:\tprod %s, dev %s, device %s, emulator %s\n", yes(p.AllowProd), yes(p.AllowDev), yes(p.AllowDevice), yes(p.AllowEmulator))
	fmt.Fprintf(tw, "  auto-halt:\t%s (at %g%% of at least %d devices)\n", yes(p.AutoHalt), p.HaltOnFailureRate*100, p.MinDevices)
	stalled := "count toward auto-halt"
	if p.IgnoreStalled {
		stalled = "shown, not counted toward auto-halt"
	}
	fmt.Fprintf(tw, "  stalled installs:\tafter %s and %d checks on another version; %s\n", p.StalledWindow(), p.StalledChecks(), stalled)
	fmt.Fprintf(tw, "  protected:\t%s\n", yes(p.Protected))
	_ = tw.Flush()
}

// newestSeq is the sequence number of the app's newest history event (0
// without one), so the events a change records can be told apart.
func newestSeq(ctx context.Context, client *ota.Client, app string) (uint64, error) {
	page, err := client.History(ctx, app, "", 0, 1)
	if err != nil {
		return 0, fmt.Errorf("read history of %s: %w", app, err)
	}
	if len(page.Events) == 0 {
		return 0, nil
	}
	return page.Events[0].Seq, nil
}

// eventsSince returns the channel's events newer than seq, newest first.
func eventsSince(ctx context.Context, client *ota.Client, app, channel string, seq uint64) ([]ota.Event, error) {
	page, err := client.History(ctx, app, channel, 0, 20)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", app, err)
	}
	events := []ota.Event{}
	for _, e := range page.Events {
		if e.Seq > seq {
			events = append(events, e)
		}
	}
	return events, nil
}

// completeChannels completes the argument at position pos (any position
// for pos < 0: a flag's value) with the app's channel names, read from
// otad. Any failure (no login, server down) completes nothing rather than
// printing an error into the shell.
func completeChannels(f *Factory, pos int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if pos >= 0 && len(args) != pos {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		// Completion skips the root's PersistentPreRunE, which records the
		// global flags given; --server and --app-id still count.
		f.flags.set = changedFlags(cmd.Root().PersistentFlags(), globalFlagKeys)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		client, app, err := f.AppClient(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		chans, err := client.Channels(ctx, app)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := make([]cobra.Completion, 0, len(chans))
		for _, c := range chans {
			names = append(names, cobra.CompletionWithDesc(c.Name, c.Kind+", active "+orDash(c.Active)))
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
