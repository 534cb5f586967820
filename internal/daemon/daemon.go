// Package daemon is otad's command line: serve, user management, backup
// and restore, healthcheck and version.
// It resolves the configuration (flag > environment > otad.yaml > default),
// opens the stores in the data directory and runs the HTTP server until its
// context ends.
//
// Everything an invocation touches of its process (arguments, standard
// streams, environment, signals) comes in through run, so tests drive the
// real command tree in-process.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"github.com/otaship/ota/internal/version"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// envBcryptCost tunes the cost of new password hashes (tests use the
// minimum). Stored hashes keep the cost they were made with.
const envBcryptCost = "OTAD_BCRYPT_COST"

// Main runs otad with the process's arguments, streams and environment and
// returns its exit code. SIGINT and SIGTERM end the context, which makes
// serve shut down gracefully; a second signal kills the process.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore the default handling: a second signal ends otad at once
	}()
	return run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
}

// env is what one invocation may use of its process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// usageError is a mistake in the command line; it exits with exitUsage.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// run executes one otad command line and returns the exit code. Errors are
// printed once, here.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "otad: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "Run 'otad --help' for usage.")
		return exitUsage
	}
	return exitError
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "otad",
		Short: "Release server for Capacitor live updates",
		Long: `otad stores web bundles and APKs, keeps channels and their history, and
answers the update checks of @capgo/capacitor-updater in self-hosted mode.

Every setting is a flag, an environment variable (OTAD_ and the flag name in
upper case, "-" as "_", e.g. OTAD_DATA_DIR) or a key of the file given with
--config, in that order of precedence. See docs/otad.md.

Exit status: 0 success, 1 error, 2 usage error.`,
		Version:       version.Info().Version,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.SetVersionTemplate("otad {{.Version}}\n")
	// The data dir, database URL and config file matter to every command
	// that opens the store, so they are on the root.
	pf := root.PersistentFlags()
	pf.String(keyDataDir, defaultDataDir, "directory of the database, bundles and signing key ($OTAD_DATA_DIR)")
	pf.String(keyConfig, "", "YAML file with settings, keyed like the flags ($OTAD_CONFIG)")
	pf.String(keyDatabaseURL, "", "keep the metadata in PostgreSQL, postgres://USER:PASSWORD@HOST:PORT/DATABASE, instead of the bbolt file in the data dir ($OTAD_DATABASE_URL)")

	root.AddCommand(newServeCmd(e), newUserCmd(e), newHealthcheckCmd(e), newVersionCmd(e))
	root.AddCommand(newBackupCmd(e), newRestoreCmd(e), newMigrateCmd(e))
	return root
}

// exactArgs is cobra.ExactArgs reported as a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

// bcryptCost is the cost of new password hashes.
func (e *env) bcryptCost() (int, error) {
	s := e.getenv(envBcryptCost)
	if s == "" {
		return bcrypt.DefaultCost, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < bcrypt.MinCost || n > bcrypt.MaxCost {
		return 0, fmt.Errorf("%s %q: want a number from %d to %d", envBcryptCost, s, bcrypt.MinCost, bcrypt.MaxCost)
	}
	return n, nil
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			v := version.Info()
			fmt.Fprintf(e.stdout, "otad %s\n", v.Version)
			if v.Commit != "" {
				fmt.Fprintf(e.stdout, "commit: %s\n", v.Commit)
			}
			if v.Date != "" {
				fmt.Fprintf(e.stdout, "built:  %s\n", v.Date)
			}
			return nil
		},
	}
}
