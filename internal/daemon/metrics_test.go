package daemon

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestMetricsConfig(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantAddr  string
		wantToken string
		wantErr   string
	}{
		{name: "off by default"},
		{name: "flags", args: []string{"--metrics-addr", "127.0.0.1:9090", "--metrics-token", "0123456789abcdef"},
			wantAddr: "127.0.0.1:9090", wantToken: "0123456789abcdef"},
		{name: "environment", env: map[string]string{"OTAD_METRICS_ADDR": "127.0.0.1:0", "OTAD_METRICS_TOKEN": "fedcba9876543210"},
			wantAddr: "127.0.0.1:0", wantToken: "fedcba9876543210"},
		{name: "short token", args: []string{"--metrics-token", "abc"}, wantErr: "metrics-token is 3 characters"},
		{name: "address without port", args: []string{"--metrics-addr", "localhost"}, wantErr: "metrics-addr \"localhost\": want host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := parseServeFlags(t, tt.args...)
			c, err := loadConfig(cmd.Flags(), mapEnv(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.MetricsAddr != tt.wantAddr || c.MetricsToken != tt.wantToken {
				t.Errorf("metrics addr/token = %q/%q, want %q/%q", c.MetricsAddr, c.MetricsToken, tt.wantAddr, tt.wantToken)
			}
		})
	}
}

func TestServeMetricsListener(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "otad_up 1\n") })
	if _, _, err := serveMetrics("256.0.0.1:99999", h, log); err == nil {
		t.Error("listening on a bad address succeeded")
	}
	if _, stop, err := serveMetrics("", h, log); err != nil {
		t.Fatal(err)
	} else {
		stop() // nothing to stop
	}
	addr, stop, err := serveMetrics("127.0.0.1:0", h, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for path, want := range map[string]int{"/metrics": 200, "/": 404, "/updates": 404} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 200 && string(body) != "otad_up 1\n") {
			t.Errorf("GET %s: %d %q, want %d", path, resp.StatusCode, body, want)
		}
	}
}
