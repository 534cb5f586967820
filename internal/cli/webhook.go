package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/pkg/ota"
)

// NewCmdWebhook builds `otactl webhook` and its subcommands.
func NewCmdWebhook(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook <command>",
		Short: "Send release events to your chat, CI or incident tool",
		Long: `A webhook is a URL otad POSTs a JSON event to whenever a release changes:
upload, activate, rollback, promote, delete and automatic halt. Each request
carries X-Otad-Signature: sha256=<hex>, the HMAC-SHA256 of the raw body under
the webhook's secret; check it before trusting the body.

Failed deliveries are retried with growing waits; every attempt is in the
webhook's delivery log (otactl webhook deliveries ID).`,
		Args: exactArgs(0),
	}
	cmd.AddCommand(NewCmdWebhookAdd(f, nil), NewCmdWebhookList(f, nil), NewCmdWebhookRemove(f, nil),
		NewCmdWebhookTest(f, nil), NewCmdWebhookDeliveries(f, nil))
	return cmd
}

// WebhookAddOptions are the inputs of otactl webhook add.
type WebhookAddOptions struct {
	F      *Factory
	URL    string
	Secret string
	Events []string
	// AllApps sends every app's events even when an app id is configured.
	AllApps bool
}

// NewCmdWebhookAdd builds `otactl webhook add`.
func NewCmdWebhookAdd(f *Factory, runF func(*WebhookAddOptions) error) *cobra.Command {
	opts := &WebhookAddOptions{F: f}
	cmd := &cobra.Command{
		Use:   "add URL",
		Short: "Register a webhook (its secret is shown once)",
		Long: `Register a webhook. Without --secret otad generates one and otactl prints it
once on standard output: give it to the receiver now, it cannot be shown again.

With --app-id (or OTACTL_APP_ID) only that app's events are sent; with
--event only those types (repeatable): upload, activate, rollback, promote,
delete, halt, rollout, policy, default_channel, device_override. The default
is upload, activate, rollback, promote, delete and halt.`,
		Example: `  otactl webhook add https://hooks.example.com/otad
  otactl webhook add https://ci.example.com/hook --secret "$HOOK_SECRET" --event halt --event rollback
  otactl webhook add https://hooks.example.com/otad --all-apps -o json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.URL = args[0]
			if runF != nil {
				return runF(opts)
			}
			return webhookAddRun(cmd, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Secret, "secret", "", "secret to sign with, at least 16 characters (default: generated)")
	cmd.Flags().StringSliceVar(&opts.Events, "event", nil, "event type to send (repeatable; default: the release events)")
	cmd.Flags().BoolVar(&opts.AllApps, "all-apps", false, "send the events of every app, even with an app id configured")
	return cmd
}

func webhookAddRun(cmd *cobra.Command, opts *WebhookAddOptions) error {
	f := opts.F
	if !strings.HasPrefix(opts.URL, "https://") && !strings.HasPrefix(opts.URL, "http://") {
		return flagErrorf("webhook URL %q must start with https:// (or http://)", opts.URL)
	}
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	client, err := f.Client(true)
	if err != nil {
		return err
	}
	req := ota.WebhookRequest{URL: opts.URL, Secret: opts.Secret, Events: opts.Events}
	// Only an app named on purpose filters; the Capacitor project around
	// the working directory does not.
	if !opts.AllApps {
		req.AppID = cfg.AppID
	}
	res, err := client.CreateWebhook(cmd.Context(), req)
	if err != nil {
		return fmt.Errorf("add webhook: %w", err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, res)
	}
	fmt.Fprintf(f.IO.ErrOut, "Added webhook %s for %s (%s).\n", res.ID, webhookScope(res.Webhook), webhookEvents(res.Webhook))
	if opts.Secret == "" {
		fmt.Fprintln(f.IO.ErrOut, "Its signing secret follows; give it to the receiver now: it is not shown again.")
		fmt.Fprintln(f.IO.Out, res.Secret)
	}
	return nil
}

func webhookScope(w ota.Webhook) string {
	if w.AppID == "" {
		return "every app"
	}
	return "app " + w.AppID
}

func webhookEvents(w ota.Webhook) string {
	if len(w.Events) == 0 {
		return strings.Join(ota.WebhookEventTypes, ", ")
	}
	return strings.Join(w.Events, ", ")
}

// WebhookListOptions are the inputs of otactl webhook list.
type WebhookListOptions struct {
	F *Factory
}

// NewCmdWebhookList builds `otactl webhook list`.
func NewCmdWebhookList(f *Factory, runF func(*WebhookListOptions) error) *cobra.Command {
	opts := &WebhookListOptions{F: f}
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List webhooks (never their secrets)",
		Example: `  otactl webhook list
  otactl webhook list -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return webhookListRun(cmd, opts)
		},
	}
}

func webhookListRun(cmd *cobra.Command, opts *WebhookListOptions) error {
	f := opts.F
	client, err := f.Client(true)
	if err != nil {
		return err
	}
	ws, err := client.Webhooks(cmd.Context())
	if err != nil {
		return fmt.Errorf("list webhooks: %w", err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, ws)
	}
	return writeTable(f, ws, "no webhooks yet; add one with: otactl webhook add URL",
		"ID\tURL\tAPP\tEVENTS\tCREATED\tBY", func(w ota.Webhook) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", w.ID, w.URL, orDash(w.AppID), webhookEvents(w), humanTime(w.CreatedAt), orDash(w.CreatedBy))
		})
}

// WebhookIDOptions are the inputs of the webhook commands that take an id.
type WebhookIDOptions struct {
	F     *Factory
	ID    string
	Limit int
}

// NewCmdWebhookRemove builds `otactl webhook rm`.
func NewCmdWebhookRemove(f *Factory, runF func(*WebhookIDOptions) error) *cobra.Command {
	opts := &WebhookIDOptions{F: f}
	return &cobra.Command{
		Use:     "rm ID",
		Aliases: []string{"remove", "delete"},
		Short:   "Remove a webhook and its delivery log",
		Example: `  otactl webhook rm wh_1a2b3c4d5e6f`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if runF != nil {
				return runF(opts)
			}
			client, err := f.Client(true)
			if err != nil {
				return err
			}
			if err := client.DeleteWebhook(cmd.Context(), opts.ID); err != nil {
				return fmt.Errorf("remove webhook %s: %w", opts.ID, err)
			}
			fmt.Fprintf(f.IO.Out, "Removed webhook %s.\n", opts.ID)
			return nil
		},
	}
}

// errDeliveryFailed makes `webhook test` exit non-zero when the receiver
// did not accept the test event.
var errDeliveryFailed = errors.New("the receiver did not accept the test event")

// NewCmdWebhookTest builds `otactl webhook test`.
func NewCmdWebhookTest(f *Factory, runF func(*WebhookIDOptions) error) *cobra.Command {
	opts := &WebhookIDOptions{F: f}
	return &cobra.Command{
		Use:   "test ID",
		Short: "Send a signed test event to a webhook now",
		Long: `Make otad send a test event (type "test") to the webhook once, now, and show
the receiver's answer. It exits non-zero when the receiver did not answer 2xx.`,
		Example: `  otactl webhook test wh_1a2b3c4d5e6f`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if runF != nil {
				return runF(opts)
			}
			client, err := f.Client(true)
			if err != nil {
				return err
			}
			d, err := client.TestWebhook(cmd.Context(), opts.ID)
			if err != nil {
				return fmt.Errorf("test webhook %s: %w", opts.ID, err)
			}
			if f.JSON() {
				if err := writeJSON(f.IO.Out, d); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(f.IO.Out, "%s: %s in %d ms\n", opts.ID, deliveryResult(d), d.DurationMS)
			}
			if !d.OK {
				return fmt.Errorf("test webhook %s: %w: %s", opts.ID, errDeliveryFailed, d.Error)
			}
			return nil
		},
	}
}

func deliveryResult(d ota.WebhookDelivery) string {
	if d.OK {
		return "delivered (" + strconv.Itoa(d.Status) + ")"
	}
	return "failed: " + d.Error
}

// NewCmdWebhookDeliveries builds `otactl webhook deliveries`.
func NewCmdWebhookDeliveries(f *Factory, runF func(*WebhookIDOptions) error) *cobra.Command {
	opts := &WebhookIDOptions{F: f}
	cmd := &cobra.Command{
		Use:     "deliveries ID",
		Aliases: []string{"log"},
		Short:   "Show a webhook's delivery attempts, newest first",
		Example: `  otactl webhook deliveries wh_1a2b3c4d5e6f --limit 10`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if opts.Limit < 0 {
				return flagErrorf("--limit must not be negative")
			}
			if runF != nil {
				return runF(opts)
			}
			client, err := f.Client(true)
			if err != nil {
				return err
			}
			ds, err := client.WebhookDeliveries(cmd.Context(), opts.ID, opts.Limit)
			if err != nil {
				return fmt.Errorf("read deliveries of webhook %s: %w", opts.ID, err)
			}
			if f.JSON() {
				return writeJSON(f.IO.Out, ds)
			}
			return writeTable(f, ds, "no deliveries yet; send one with: otactl webhook test "+opts.ID,
				"TIME\tEVENT\tTYPE\tATTEMPT\tRESULT\tMS", func(d ota.WebhookDelivery) string {
					return fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%d", humanTime(d.Time), d.EventID, d.EventType, d.Attempt, deliveryResult(d), d.DurationMS)
				})
		},
	}
	cmd.Flags().IntVar(&opts.Limit, "limit", 20, "number of attempts to show")
	return cmd
}
