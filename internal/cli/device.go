package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/pkg/ota"
)

// NewCmdDevice builds `otactl device` and its subcommands.
func NewCmdDevice(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device [DEVICE_ID | <command>]",
		Short: "Show a device's story; pin it to a channel, or unpin it",
		Long: `otactl device DEVICE_ID tells one device's story: its latest update check
(when, the bundle it ran, its channel, native and plugin versions), what it
was offered last and what it did about it (downloaded, installed, failed, or
stalled: kept polling on another version without a word), its reports of the
last 7 days, and what its next check would be answered, explained by the
same code as otactl explain. otad remembers the devices that checked most
recently (two million by default).

A pinned device is served from its pin's channel whatever channel it asks
for (its defaultChannel or setChannel), which is how a tester's phone gets
the beta without a special build. The channel's policies still apply.

The device id is the plugin's (CapacitorUpdater.getDeviceId(), a UUID), as
otactl stats and otad's logs show it.`,
		Example: `  otactl device 6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11
  otactl device 6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11 -o json
  otactl device pin 6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11 beta`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return deviceStoryRun(cmd.Context(), &DeviceStoryOptions{F: f, Device: args[0]})
		},
	}
	cmd.AddCommand(NewCmdDevicePin(f, nil), NewCmdDeviceUnpin(f, nil))
	return cmd
}

// DevicePinOptions are the inputs of otactl device pin.
type DevicePinOptions struct {
	F       *Factory
	Device  string
	Channel string
}

// DevicePinResult is what `otactl device pin -o json` prints.
type DevicePinResult struct {
	AppID    string `json:"app_id"`
	DeviceID string `json:"device_id"`
	Channel  string `json:"channel"`
	// Events are the history events the pin recorded.
	Events []ota.Event `json:"events"`
}

// NewCmdDevicePin builds `otactl device pin`.
func NewCmdDevicePin(f *Factory, runF func(*DevicePinOptions) error) *cobra.Command {
	opts := &DevicePinOptions{F: f}
	return &cobra.Command{
		Use:   "pin DEVICE_ID CHANNEL",
		Short: "Serve a device from a channel, whatever it asks for",
		Long: `Pin the device to CHANNEL, a web channel of the app: from its next check on
it is offered CHANNEL's bundle, whatever channel it asks for. Pinning again
moves it; otactl device unpin releases it. The pin is recorded in the
history, shown after it.`,
		Example: `  otactl device pin 6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11 beta
  otactl device pin 6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11 beta --app-id com.example.app -o json`,
		Args:              exactArgs(2),
		ValidArgsFunction: completeChannels(f, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Device, opts.Channel = args[0], args[1]
			if err := ota.ValidateChannel(opts.Channel); err != nil {
				return flagErrorf("%v", err)
			}
			if runF != nil {
				return runF(opts)
			}
			return devicePinRun(cmd.Context(), opts)
		},
	}
}

func devicePinRun(ctx context.Context, opts *DevicePinOptions) error {
	f := opts.F
	client, app, err := f.AppClient(ctx)
	if err != nil {
		return err
	}
	since, err := newestSeq(ctx, client, app)
	if err != nil {
		return err
	}
	if err := client.SetOverride(ctx, app, opts.Device, opts.Channel); err != nil {
		return fmt.Errorf("pin device %s of %s to %s: %w", opts.Device, app, opts.Channel, err)
	}
	events, err := eventsSince(ctx, client, app, opts.Channel, since)
	if err != nil {
		return err
	}
	// Device ids are kept lowercase, as devices are matched.
	device := strings.ToLower(opts.Device)
	if f.JSON() {
		return writeJSON(f.IO.Out, DevicePinResult{AppID: app, DeviceID: device, Channel: opts.Channel, Events: events})
	}
	fmt.Fprintf(f.IO.ErrOut, "Pinned device %s of %s to %s: its next check is answered from %s.\n", device, app, opts.Channel, opts.Channel)
	if len(events) == 0 {
		return nil
	}
	return printEvents(f, events)
}

// DeviceUnpinOptions are the inputs of otactl device unpin.
type DeviceUnpinOptions struct {
	F      *Factory
	Device string
}

// DeviceUnpinResult is what `otactl device unpin -o json` prints.
type DeviceUnpinResult struct {
	AppID    string `json:"app_id"`
	DeviceID string `json:"device_id"`
	Unpinned bool   `json:"unpinned"`
}

// NewCmdDeviceUnpin builds `otactl device unpin`.
func NewCmdDeviceUnpin(f *Factory, runF func(*DeviceUnpinOptions) error) *cobra.Command {
	opts := &DeviceUnpinOptions{F: f}
	return &cobra.Command{
		Use:   "unpin DEVICE_ID",
		Short: "Release a device's pin",
		Long: `Remove the device's pin: from its next check on it is served from the
channel it asks for, or the app's default channel. A device that is not
pinned is an error (exit 1). otad does not record unpinning in the history.`,
		Example: `  otactl device unpin 6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Device = args[0]
			if runF != nil {
				return runF(opts)
			}
			return deviceUnpinRun(cmd.Context(), opts)
		},
	}
}

func deviceUnpinRun(ctx context.Context, opts *DeviceUnpinOptions) error {
	f := opts.F
	client, app, err := f.AppClient(ctx)
	if err != nil {
		return err
	}
	if err := client.DeleteOverride(ctx, app, opts.Device); err != nil {
		return fmt.Errorf("unpin device %s of %s: %w", opts.Device, app, err)
	}
	device := strings.ToLower(opts.Device)
	if f.JSON() {
		return writeJSON(f.IO.Out, DeviceUnpinResult{AppID: app, DeviceID: device, Unpinned: true})
	}
	fmt.Fprintf(f.IO.ErrOut, "Unpinned device %s of %s: its next check is answered from the channel it asks for, or the default channel.\n", device, app)
	return nil
}
