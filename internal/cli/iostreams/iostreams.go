// Package iostreams gives otactl's commands their standard streams and what
// is known about them (terminal or not, colour allowed or not), so commands
// never touch os.Stdout and tests can run them without a terminal.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams holds a command's input and output streams. Out is for the
// data a command prints (tables, JSON); ErrOut for progress, status and
// errors, so that `otactl ... -o json | jq` stays clean.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	inTTY, outTTY, errTTY bool
	noColor               bool
	// inFd is stdin's file descriptor for no-echo password reads; -1 when
	// stdin is not a file.
	inFd int
}

// System returns the process's streams, detecting terminals. getenv is
// consulted for NO_COLOR (https://no-color.org) and TERM=dumb.
func System(getenv func(string) string) *IOStreams {
	s := &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, inFd: int(os.Stdin.Fd())}
	s.inTTY = term.IsTerminal(int(os.Stdin.Fd()))
	s.outTTY = term.IsTerminal(int(os.Stdout.Fd()))
	s.errTTY = term.IsTerminal(int(os.Stderr.Fd()))
	s.noColor = getenv("NO_COLOR") != "" || getenv("TERM") == "dumb"
	return s
}

// Test returns streams over buffers, none of them a terminal: stdin, then
// what the command wrote to Out and to ErrOut.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut, inFd: -1, noColor: true}, in, out, errOut
}

// IsStdinTTY reports whether stdin is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.inTTY }

// IsStdoutTTY reports whether stdout is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.outTTY }

// IsStderrTTY reports whether stderr is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.errTTY }

// SetStdinTTY overrides terminal detection, for tests.
func (s *IOStreams) SetStdinTTY(v bool) { s.inTTY = v }

// SetStdoutTTY overrides terminal detection, for tests.
func (s *IOStreams) SetStdoutTTY(v bool) { s.outTTY = v }

// SetStderrTTY overrides terminal detection, for tests.
func (s *IOStreams) SetStderrTTY(v bool) { s.errTTY = v }

// ColorEnabled reports whether colour may be written to ErrOut.
func (s *IOStreams) ColorEnabled() bool { return s.errTTY && !s.noColor }

// CanPrompt reports whether the user can be asked something: stdin is a
// terminal. Prompts go to ErrOut even when it is redirected, so
// `otactl login 2>log` still works.
func (s *IOStreams) CanPrompt() bool { return s.inTTY }

// ReadPassword reads a line from the terminal without echoing it. It needs
// CanPrompt; the prompt goes to ErrOut.
func (s *IOStreams) ReadPassword(prompt string) (string, error) {
	_, _ = io.WriteString(s.ErrOut, prompt)
	b, err := term.ReadPassword(s.inFd)
	_, _ = io.WriteString(s.ErrOut, "\n")
	if err != nil {
		return "", err
	}
	return string(b), nil
}
