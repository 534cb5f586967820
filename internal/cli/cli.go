// Package cli is otactl's command tree and the mapping of its errors to
// exit codes.
//
// Every command has an options struct holding its flags and a *Factory
// (streams, HTTP client, clock, environment, child-process runner), and a
// run function that does the work through them, so commands are tested
// without a terminal, a network or real child processes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/otaship/ota/pkg/ota"
)

// Exit codes, documented in the root command's help and docs/cli-exit-codes.md.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitUsage    = 2
	ExitAuth     = 3
	ExitConflict = 4
	ExitBuild    = 5
	ExitServer   = 6
)

// Main runs otactl with the process's arguments and streams and returns its
// exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, NewFactory(), os.Args[1:])
}

// Run runs otactl with args over f and returns the exit code. Errors are
// printed here, once, to f.IO.ErrOut.
func Run(ctx context.Context, f *Factory, args []string) int {
	root := NewCmdRoot(f)
	root.SetArgs(args)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	ec := errorContext{tokenFromEnv: f.cfg != nil && f.cfg.TokenFromEnv}
	if cmd != nil {
		ec.command = cmd.CommandPath()
	}
	printError(f.IO.ErrOut, err, ec)
	return ExitCode(err)
}

// FlagError is a usage mistake: a bad flag, argument or combination.
type FlagError struct {
	Err error
	// explained is set when the message already says what to do, so no
	// pointer to --help is added.
	explained bool
}

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// flagErrorf builds a *FlagError.
func flagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...), explained: true}
}

// AuthError means there is no usable token.
type AuthError struct{ Err error }

func (e *AuthError) Error() string { return e.Err.Error() }
func (e *AuthError) Unwrap() error { return e.Err }

// StepError is a child process (build, sync, docker) that failed.
type StepError struct {
	Step    string // "build", "sync", "APK build"
	Command string // the command line as the user would type it
	Status  int    // exit status, or -1 when it did not start or was killed
	Err     error
	// Hint, when set, tells the user what to do about it.
	Hint string
	// NotStarted is set when a check before the step found it could not
	// succeed, so it was not run.
	NotStarted bool
	// output is the tail of what the step printed.
	output string
}

func (e *StepError) Error() string {
	var s string
	switch {
	case e.NotStarted:
		s = fmt.Sprintf("%s not started: %v", e.Step, e.Err)
	case e.Status >= 0:
		s = fmt.Sprintf("%s failed: %q exited with status %d", e.Step, e.Command, e.Status)
	default:
		s = fmt.Sprintf("%s failed: %q: %v", e.Step, e.Command, e.Err)
	}
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

func (e *StepError) Unwrap() error { return e.Err }

// ExitCode maps an error to otactl's documented exit codes.
func ExitCode(err error) int {
	var (
		fe  *FlagError
		ae  *AuthError
		se  *StepError
		api *ota.APIError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &fe), isCobraUsageError(err):
		return ExitUsage
	case errors.As(err, &ae):
		return ExitAuth
	case errors.As(err, &se):
		return ExitBuild
	case errors.As(err, &api):
		switch {
		case api.Status == 401 || api.Status == 403:
			return ExitAuth
		case api.Status == 409:
			return ExitConflict
		case api.Status >= 500:
			return ExitServer
		}
		return ExitError
	case isNetworkError(err):
		return ExitServer
	}
	return ExitError
}

// isCobraUsageError recognises the usage errors cobra makes itself, which
// have no type of their own.
func isCobraUsageError(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command ") || strings.HasPrefix(s, "unknown flag") ||
		strings.HasPrefix(s, "unknown shorthand flag") || strings.HasPrefix(s, "invalid argument ")
}

func isNetworkError(err error) bool {
	var ue *url.Error
	var ne net.Error
	var oe *net.OpError
	var pe *fs.PathError
	if errors.As(err, &pe) && !errors.As(err, &ue) && !errors.As(err, &oe) {
		// A local file's error: its syscall.Errno has the methods of a
		// net.Error, but the server is not to blame.
		return false
	}
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.As(err, &oe)
}

// errorContext is what printError needs to point at the right fix.
type errorContext struct {
	// command is the path of the command that failed ("otactl rollback").
	command string
	// tokenFromEnv is set when the token came from OTACTL_TOKEN, which
	// overrides the stored login: logging in again cannot help then.
	tokenFromEnv bool
}

// printError writes err for a person, with a hint on what to do next.
func printError(w io.Writer, err error, ec errorContext) {
	msg := err.Error()
	var api *ota.APIError
	var ae *AuthError
	var fe *FlagError
	var hint string
	switch {
	case errors.As(err, &ae), errors.As(err, &fe) && fe.explained:
		// Its message says what to do already.
	case errors.As(err, &api) && api.Status == 401 && ec.tokenFromEnv:
		// otad's "run: otactl login" cannot help: the variable wins.
		msg = strings.Replace(msg, "; run: otactl login", "", 1)
		hint = "the token in OTACTL_TOKEN was refused (expired, revoked or mistyped); it overrides the login stored by otactl login: set OTACTL_TOKEN to a valid token, or unset it"
	case errors.As(err, &api) && api.Status == 401:
		if !strings.Contains(msg, "otactl login") {
			hint = "run: otactl login"
		}
	case errors.As(err, &api) && api.Status == 409 && api.Code == ota.ErrCodeConflict && !strings.Contains(msg, "new version"):
		hint = "version names are immutable: bump the version (package.json, or pass VERSION) and deploy again"
	case ExitCode(err) == ExitUsage:
		command := ec.command
		if command == "" {
			command = "otactl"
		}
		hint = "see: " + command + " --help"
	case isNetworkError(err):
		hint = "is otad running and is --server (OTACTL_SERVER) right?"
	}
	fmt.Fprintf(w, "otactl: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(w, "%s\n", hint)
	}
}
