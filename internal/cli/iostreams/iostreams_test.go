package iostreams

import "testing"

func TestTestStreams(t *testing.T) {
	s, in, out, errOut := Test()
	if s.IsStdinTTY() || s.IsStdoutTTY() || s.IsStderrTTY() || s.CanPrompt() || s.ColorEnabled() {
		t.Error("test streams claim to be terminals")
	}
	in.WriteString("x")
	if _, err := s.Out.Write([]byte("o")); err != nil || out.String() != "o" {
		t.Errorf("Out not wired: %q %v", out, err)
	}
	if _, err := s.ErrOut.Write([]byte("e")); err != nil || errOut.String() != "e" {
		t.Errorf("ErrOut not wired: %q %v", errOut, err)
	}
	s.SetStdinTTY(true)
	if !s.CanPrompt() {
		t.Error("CanPrompt false with a terminal on stdin")
	}
	s.SetStderrTTY(true)
	if s.ColorEnabled() {
		t.Error("colour enabled although test streams set no-colour")
	}
}

func TestSystemNoColor(t *testing.T) {
	env := map[string]string{"NO_COLOR": "1"}
	s := System(func(k string) string { return env[k] })
	s.SetStderrTTY(true)
	if s.ColorEnabled() {
		t.Error("colour enabled with NO_COLOR set")
	}
	env = map[string]string{"TERM": "xterm"}
	s = System(func(k string) string { return env[k] })
	s.SetStderrTTY(true)
	if !s.ColorEnabled() {
		t.Error("colour disabled on a terminal without NO_COLOR")
	}
}
