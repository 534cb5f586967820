package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/pkg/ota"
)

// NewCmdToken builds `otactl token` and its subcommands.
func NewCmdToken(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token <command>",
		Short: "Create, list and revoke CI tokens",
		Long: `CI tokens let a deploy job upload without a user's password. A token is
long-lived but always expires, can be limited to one app and one channel,
and is shown only once: otad keeps a hash of it.

Give it to the job as OTACTL_TOKEN (otactl), or as the Authorization: Bearer
header of the old deploy scripts. Creating, listing and revoking tokens needs
a user login (otactl login), not a CI token.`,
		Args: noArgs,
	}
	cmd.AddCommand(NewCmdTokenCreate(f, nil), NewCmdTokenList(f, nil), NewCmdTokenRevoke(f, nil))
	return cmd
}

// TokenCreateOptions are the inputs of otactl token create.
type TokenCreateOptions struct {
	F       *Factory
	Name    string
	Expires string
	Channel string
	// Protected lets the token deploy to protected channels.
	Protected bool
}

// NewCmdTokenCreate builds `otactl token create`.
func NewCmdTokenCreate(f *Factory, runF func(*TokenCreateOptions) error) *cobra.Command {
	opts := &TokenCreateOptions{F: f}
	cmd := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Create a CI token (shown once)",
		Long: `Create a CI token and print it once on standard output. Store it as a
secret of the CI system right away: it cannot be shown again.

With --app-id (or OTACTL_APP_ID) the token may only upload to and change
that app; with --channel only that channel. A scoped token may still read.
It can never manage users or tokens, nor set upload times.

A channel marked protected (otactl channel set CHANNEL --protected) takes
deploys, promotions and rollout steps only from a user login or a token
made with --protected; every token may still roll back and pause there.`,
		Example: `  otactl token create --name github-deploy --expires 90d --app-id com.example.app --channel beta
  otactl token create --name nightly --expires 2w -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return tokenCreateRun(cmd, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "name of the token, to recognise it in lists and the history (required)")
	cmd.Flags().StringVar(&opts.Expires, "expires", "90d", "lifetime: days (90d), weeks (2w) or a Go duration (36h)")
	cmd.Flags().StringVar(&opts.Channel, "channel", "", "limit the token to this channel")
	cmd.Flags().BoolVar(&opts.Protected, "protected", false, "let the token deploy, promote and roll out on protected channels")
	return cmd
}

// parseLifetime reads 90d, 2w or a Go duration such as 36h.
func parseLifetime(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	unit := time.Duration(0)
	switch {
	case strings.HasSuffix(s, "d"):
		unit = 24 * time.Hour
	case strings.HasSuffix(s, "w"):
		unit = 7 * 24 * time.Hour
	}
	if unit != 0 {
		n, err := strconv.Atoi(s[:len(s)-1])
		if err != nil || n <= 0 || n > 10000 {
			return 0, fmt.Errorf("lifetime %q is not a positive number of days or weeks, such as 90d", s)
		}
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("lifetime %q is not 90d, 2w or a duration such as 36h", s)
	}
	return d, nil
}

func tokenCreateRun(cmd *cobra.Command, opts *TokenCreateOptions) error {
	f := opts.F
	if opts.Name == "" {
		return flagErrorf("name the token with --name, e.g. --name github-deploy")
	}
	ttl, err := parseLifetime(opts.Expires)
	if err != nil {
		return flagErrorf("--expires: %v", err)
	}
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	client, err := f.Client(true)
	if err != nil {
		return err
	}
	// Only an app named on purpose scopes the token; the Capacitor project
	// around the working directory does not.
	res, err := client.CreateToken(cmd.Context(), ota.TokenCreateRequest{
		Name: opts.Name, TTLSeconds: int64(ttl / time.Second), AppID: cfg.AppID, Channel: opts.Channel, Protected: opts.Protected,
	})
	if err != nil {
		return fmt.Errorf("create token %s: %w", opts.Name, err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, res)
	}
	fmt.Fprintf(f.IO.ErrOut, "Created CI token %q (id %s, %s), expires %s.\n", res.Name, res.ID, scopeText(res.TokenInfo), humanTime(res.ExpiresAt))
	fmt.Fprintln(f.IO.ErrOut, "Store it as a CI secret (OTACTL_TOKEN) now: it is not shown again.")
	fmt.Fprintln(f.IO.Out, res.Token)
	return nil
}

// scopeText describes what a token may change.
func scopeText(t ota.TokenInfo) string {
	switch {
	case t.AppID != "" && t.Channel != "":
		return "app " + t.AppID + ", channel " + t.Channel
	case t.AppID != "":
		return "app " + t.AppID + ", every channel"
	case t.Channel != "":
		return "channel " + t.Channel + " of every app"
	}
	return "every app and channel"
}

// TokenListOptions are the inputs of otactl token list.
type TokenListOptions struct {
	F *Factory
}

// NewCmdTokenList builds `otactl token list`.
func NewCmdTokenList(f *Factory, runF func(*TokenListOptions) error) *cobra.Command {
	opts := &TokenListOptions{F: f}
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List CI tokens, revoked and expired ones included",
		Example: `  otactl token list
  otactl token list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return tokenListRun(cmd, opts)
		},
	}
}

// tokenStatus is active, expired or revoked.
func tokenStatus(t ota.TokenInfo, now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked"
	case !now.Before(t.ExpiresAt):
		return "expired"
	}
	return "active"
}

func tokenListRun(cmd *cobra.Command, opts *TokenListOptions) error {
	f := opts.F
	client, err := f.Client(true)
	if err != nil {
		return err
	}
	ts, err := client.Tokens(cmd.Context())
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, ts)
	}
	return writeTable(f, ts, "no CI tokens yet; create one with: otactl token create --name NAME",
		"ID\tNAME\tAPP\tCHANNEL\tSTATUS\tEXPIRES\tCREATED BY", func(t ota.TokenInfo) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", t.ID, t.Name, orDash(t.AppID), orDash(t.Channel),
				tokenStatus(t, f.Now()), humanTime(t.ExpiresAt), t.CreatedBy)
		})
}

// TokenRevokeOptions are the inputs of otactl token revoke.
type TokenRevokeOptions struct {
	F  *Factory
	ID string
}

// NewCmdTokenRevoke builds `otactl token revoke`.
func NewCmdTokenRevoke(f *Factory, runF func(*TokenRevokeOptions) error) *cobra.Command {
	opts := &TokenRevokeOptions{F: f}
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a CI token at once",
		Long: `Revoke a CI token: every request with it fails from now on. The token
stays listed as revoked. Find the ID with otactl token list.`,
		Example: `  otactl token revoke 3f2a9c0d41b7e685`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return tokenRevokeRun(cmd, opts)
		},
	}
}

func tokenRevokeRun(cmd *cobra.Command, opts *TokenRevokeOptions) error {
	f := opts.F
	client, err := f.Client(true)
	if err != nil {
		return err
	}
	t, err := client.RevokeToken(cmd.Context(), opts.ID)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", opts.ID, err)
	}
	if f.JSON() {
		return writeJSON(f.IO.Out, t)
	}
	fmt.Fprintf(f.IO.Out, "revoked CI token %q (id %s)\n", t.Name, t.ID)
	return nil
}
