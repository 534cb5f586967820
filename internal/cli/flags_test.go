package cli

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/internal/cli/iostreams"
)

// parse runs a command built by newCmd on argv with a runF that captures
// the options, and returns the error (nil when runF was reached).
func parse[O any](t *testing.T, newCmd func(*Factory, func(*O) error) *cobra.Command, argv string) (*O, error) {
	t.Helper()
	io, _, _, _ := iostreams.Test()
	f := &Factory{IO: io}
	var got *O
	cmd := newCmd(f, func(o *O) error { got = o; return nil })
	cmd.SetArgs(strings.Fields(argv))
	cmd.SetOut(io.Out)
	cmd.SetErr(io.ErrOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &FlagError{Err: err} })
	err := cmd.ExecuteContext(context.Background())
	return got, err
}

func TestNewCmdDeployWeb(t *testing.T) {
	tests := []struct {
		argv    string
		want    DeployWebOptions
		wantErr string
	}{
		{"", DeployWebOptions{Channel: "stable"}, ""},
		{"1.2.0 --channel beta --notes hi --min-native 1.0.0 --max-native 2.0.0 --dry-run --no-code-check",
			DeployWebOptions{Version: "1.2.0", Channel: "beta", Notes: "hi", MinNative: "1.0.0", MaxNative: "2.0.0", DryRun: true, NoCodeCheck: true}, ""},
		{"--build-cmd make --no-sync", DeployWebOptions{Channel: "stable", buildFlags: buildFlags{BuildCmd: "make", NoSync: true}}, ""},
		{"--skip-build", DeployWebOptions{Channel: "stable", buildFlags: buildFlags{SkipBuild: true}}, ""},
		{"--skip-build --no-sync", DeployWebOptions{}, "cannot be combined"},
		{"1 2", DeployWebOptions{}, "takes at most 1 argument(s) (VERSION), but got 2"},
		{"--nosuch", DeployWebOptions{}, "unknown flag"},
		{"--encrypt-key k.pem", DeployWebOptions{Channel: "stable", EncryptKey: "k.pem", EncryptKeySet: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.argv, func(t *testing.T) {
			got, err := parse(t, NewCmdDeployWeb, tt.argv)
			if tt.wantErr != "" {
				var fe *FlagError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &fe) {
					t.Fatalf("err = %v, want a *FlagError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.F = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestNewCmdDeployAPK(t *testing.T) {
	got, err := parse(t, NewCmdDeployAPK, "1.4.0 --release --image img:1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "1.4.0" || !got.Release || got.Image != "img:1" || got.Channel != "apk" {
		t.Errorf("options = %+v", *got)
	}
	got, _ = parse(t, NewCmdDeployAPK, "")
	if got.Image != DefaultAndroidImage || got.Release {
		t.Errorf("defaults = %+v", *got)
	}
	if _, err := parse(t, NewCmdDeployAPK, "--apk x.apk --release"); err == nil {
		t.Error("--apk with --release accepted")
	}
}

func TestNewCmdPromoteRollbackHistory(t *testing.T) {
	p, err := parse(t, NewCmdPromote, "1.2.0 --from beta --to stable")
	if err != nil || p.Version != "1.2.0" || p.From != "beta" || p.To != "stable" {
		t.Errorf("promote: %+v, %v", p, err)
	}
	for _, argv := range []string{"1.2.0 --from beta", "1.2.0 --from a --to a", "--from a --to b"} {
		if _, err := parse(t, NewCmdPromote, argv); err == nil {
			t.Errorf("promote %q accepted", argv)
		}
	}
	r, err := parse(t, NewCmdRollback, "stable --to 1.0.0")
	if err != nil || r.Channel != "stable" || r.To != "1.0.0" {
		t.Errorf("rollback: %+v, %v", r, err)
	}
	h, err := parse(t, NewCmdHistory, "beta --limit 5 --before 9")
	if err != nil || h.Channel != "beta" || h.Limit != 5 || h.Before != 9 {
		t.Errorf("history: %+v, %v", h, err)
	}
	if h, _ = parse(t, NewCmdHistory, ""); h.Limit != 20 || h.Channel != "" {
		t.Errorf("history defaults: %+v", h)
	}
	if _, err := parse(t, NewCmdHistory, "--before x"); err == nil {
		t.Error("history --before x accepted")
	}
	l, err := parse(t, NewCmdLogin, "-u ci --password-stdin")
	if err != nil || l.Username != "ci" || !l.PasswordStdin {
		t.Errorf("login: %+v, %v", l, err)
	}
}
