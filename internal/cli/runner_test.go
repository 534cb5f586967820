package cli

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/cli/iostreams"
)

// TestExecRunner runs a real child: its output streams through, and a
// non-zero exit becomes a *StepError naming the command and status.
func TestExecRunner(t *testing.T) {
	io, _, out, errOut := iostreams.Test()
	f := &Factory{IO: io, Runner: ExecRunner{}, Getenv: func(string) string { return "" }}
	tests := []struct {
		name       string
		script     string
		wantStatus int // 0: success
	}{
		{"success", "echo to-stdout; echo to-stderr >&2", 0},
		{"failure", "echo to-stdout; echo to-stderr >&2; exit 3", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out.Reset()
			errOut.Reset()
			tail, err := runStepCapture(context.Background(), f, "build", t.TempDir(), "make web", nil, "sh", "-c", tt.script)
			if !strings.Contains(out.String(), "to-stdout") || !strings.Contains(errOut.String(), "to-stderr") {
				t.Errorf("child output not streamed: stdout %q stderr %q", out, errOut)
			}
			if !strings.Contains(tail, "to-stderr") {
				t.Errorf("stderr tail = %q", tail)
			}
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *StepError
			if !errors.As(err, &se) || se.Status != tt.wantStatus {
				t.Fatalf("err = %v, want a *StepError with status %d", err, tt.wantStatus)
			}
			if want := `build failed: "make web" exited with status 3`; err.Error() != want {
				t.Errorf("message %q, want %q", err, want)
			}
		})
	}
	t.Run("environment", func(t *testing.T) {
		out.Reset()
		t.Setenv("OTACTL_TEST_INHERITED", "kept")
		if _, err := runStepCapture(context.Background(), f, "build", t.TempDir(), "env", []string{"OTA_VERSION=1.3.0"},
			"sh", "-c", `echo "v=$OTA_VERSION inherited=$OTACTL_TEST_INHERITED"`); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != "v=1.3.0 inherited=kept\n" {
			t.Errorf("child saw %q, want the added variable and the inherited environment", got)
		}
	})
	t.Run("missing program", func(t *testing.T) {
		_, err := runStepCapture(context.Background(), f, "sync", t.TempDir(), "npx cap sync", nil, "otactl-no-such-program")
		var se *StepError
		if !errors.As(err, &se) || se.Status != -1 || !strings.Contains(err.Error(), `sync failed: "npx cap sync"`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := runStepCapture(ctx, f, "build", t.TempDir(), "sleep", nil, "sh", "-c", "exec sleep 30")
		if err == nil || !strings.Contains(err.Error(), "build interrupted") {
			t.Fatalf("err = %v, want an interrupted build", err)
		}
		if time.Since(start) > 15*time.Second {
			t.Errorf("cancel took %v", time.Since(start))
		}
	})
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 5}
	for _, s := range []string{"abc", "defg", "h"} {
		if _, err := tb.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got := tb.String(); got != "defgh" {
		t.Errorf("tail = %q, want defgh", got)
	}
}
