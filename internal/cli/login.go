package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/internal/cli/config"
	"github.com/otaship/ota/pkg/ota"
)

// LoginOptions are the inputs of otactl login.
type LoginOptions struct {
	F             *Factory
	Username      string
	PasswordStdin bool
}

// NewCmdLogin builds `otactl login`. runF replaces the run function in tests.
func NewCmdLogin(f *Factory, runF func(*LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{F: f}
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to otad and store the token",
		Long: `Log in to otad with a user name and password and store the token in the
user config directory (a file only you can read). Later commands use it
until it expires; OTACTL_TOKEN overrides it.

The password is asked without echo on a terminal, or read as one line from
stdin with --password-stdin. It is never taken as an argument, so it stays
out of shell history and process lists.`,
		Example: `  otactl login --server https://ota.example.com --username admin
  printf '%s\n' "$OTA_PASSWORD" | otactl login --username ci --password-stdin`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return loginRun(cmd, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Username, "username", "u", "", "user name (asked on a terminal when not given)")
	cmd.Flags().BoolVar(&opts.PasswordStdin, "password-stdin", false, "read the password from stdin")
	return cmd
}

func loginRun(cmd *cobra.Command, opts *LoginOptions) error {
	f := opts.F
	client, err := f.Client(false)
	if err != nil {
		return err
	}
	cfg, _ := f.Config()

	in := bufio.NewReader(f.IO.In)
	user := opts.Username
	if user == "" {
		if !f.IO.CanPrompt() {
			return flagErrorf("--username is required when not on a terminal")
		}
		fmt.Fprint(f.IO.ErrOut, "Username: ")
		if user, err = readLine(in); err != nil {
			return fmt.Errorf("read user name: %w", err)
		}
	}
	var pw string
	switch {
	case opts.PasswordStdin:
		if pw, err = readLine(in); err != nil {
			return fmt.Errorf("read password from stdin: %w", err)
		}
	case f.IO.CanPrompt():
		if pw, err = f.IO.ReadPassword("Password: "); err != nil {
			return fmt.Errorf("read password: %w", err)
		}
	default:
		return flagErrorf("no terminal to ask the password on: pipe it in with --password-stdin")
	}
	if user == "" || pw == "" {
		return flagErrorf("user name and password must not be empty")
	}

	res, err := client.Login(cmd.Context(), user, pw)
	var api *ota.APIError
	if errors.As(err, &api) && api.Status == 401 {
		return &AuthError{Err: fmt.Errorf("login to %s as %s refused: %w", cfg.Server, user, err)}
	}
	if err != nil {
		return fmt.Errorf("log in to %s: %w", cfg.Server, err)
	}

	creds, err := config.LoadCredentials(cfg.Dir)
	if err != nil {
		return err
	}
	creds.Current = cfg.Server
	creds.Tokens[cfg.Server] = config.Token{Token: res.Token, Username: user, ExpiresAt: res.ExpiresAt}
	if err := config.SaveCredentials(cfg.Dir, creds); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "Logged in to %s as %s (token valid until %s)\n", cfg.Server, user, humanTime(res.ExpiresAt))
	if cfg.TokenFromEnv {
		fmt.Fprintln(f.IO.ErrOut, "Note: OTACTL_TOKEN is set and takes precedence over the stored token.")
	}
	return nil
}

// readLine reads one line without its line ending; EOF after some text is
// fine (printf without \n).
func readLine(r *bufio.Reader) (string, error) {
	s, err := r.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && s != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("nothing to read (stdin is empty)")
		}
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}
