package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/otaship/ota/bench/internal/load"
)

// Credentials of the user every otad of the benchmark is started with.
const (
	benchUser     = "bench"
	benchPassword = "bench-password-0123"
	publicURL     = "https://ota.example.com"
)

// The device every update check comes from (protocol §1.2, the iOS
// example), on version 1.0.0 of app 0 with no channel chosen, so the
// answer is the active bundle of the app's default channel (seeded: ch0).
func updatesBody(appID string) []byte {
	return fmt.Appendf(nil, `{"platform":"ios","device_id":"6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11","app_id":%q,`+
		`"custom_id":"","version_build":"1.0.0","version_code":"42","version_os":"17.5","version_name":"1.0.0",`+
		`"plugin_version":"8.51.14","is_emulator":false,"is_prod":true,"install_source":"app_store","defaultChannel":""}`, appID)
}

func updatesRequest(appID string) load.Request {
	return load.Request{Method: "POST", Path: "/updates", ContentType: "application/json", Body: updatesBody(appID)}
}

// benchApp is the app the device requests name; seed names apps this way.
const benchApp = "com.bench.app0000"

// startOtad starts otad serve on dataDir with the benchmark user, which
// it creates when missing.
func (b *bench) startOtad(ctx context.Context, name, dataDir string) (*proc, error) {
	return b.startOtadEnv(ctx, name, dataDir, "OTAD_ADMIN_USER="+benchUser, "OTAD_ADMIN_PASSWORD="+benchPassword)
}

// startOtadEnv starts otad serve on dataDir with extra environment.
func (b *bench) startOtadEnv(ctx context.Context, name, dataDir string, env ...string) (*proc, error) {
	addrFile := b.path(name + ".addr")
	return startProc(ctx, name, filepath.Join(b.cfg.bin, "otad"),
		[]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--addr-file", addrFile, "--log-format", "json"},
		// All load comes from one loopback address, which the per-address
		// device rate limit would otherwise throttle.
		append([]string{"OTAD_PUBLIC_URL=" + publicURL, "OTAD_MAX_UPLOAD_SIZE=512MB", "OTAD_DEVICE_RATE_LIMIT=0"}, env...), addrFile)
}

// seedSmall makes a data dir with one app, one channel and n bundles.
func (b *bench) seedSmall(ctx context.Context, dir string, bundles int) error {
	if _, err := os.Stat(filepath.Join(dir, "otad.db")); err == nil {
		return nil
	}
	_, _, err := timeCmd(ctx, "", filepath.Join(b.cfg.bin, "seed"), "--data-dir", dir,
		"--apps", "1", "--channels", "1", "--bundles", fmt.Sprint(bundles))
	return err
}

// copyDir copies a seeded data dir so that otad (which writes the user
// into it) never changes the cached original.
func copyDir(ctx context.Context, src, dst string) error {
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("remove %s: %w", dst, err)
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("copy %s: %w: %s", src, err, out)
	}
	return nil
}

// login returns a bearer token for the benchmark user.
func login(addr string) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": benchUser, "password": benchPassword})
	status, resp, err := load.Do(addr, load.Request{Method: "POST", Path: "/api/auth/login", ContentType: "application/json", Body: body})
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("login: HTTP %d: %s", status, resp)
	}
	var lr struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(resp, &lr); err != nil || lr.Token == "" {
		return "", fmt.Errorf("login: no token in %s", resp)
	}
	return lr.Token, nil
}

// probeUpdate checks that the update request gets an update (not an error
// answer) and returns the response body.
func probeUpdate(addr string) ([]byte, error) { return probeUpdateOf(addr, benchApp) }

// probeUpdateOf is probeUpdate for the app appID.
func probeUpdateOf(addr, appID string) ([]byte, error) {
	status, body, err := load.Do(addr, updatesRequest(appID))
	if err != nil {
		return nil, fmt.Errorf("update check: %w", err)
	}
	var r struct {
		Version, URL, Error string
	}
	if status != http.StatusOK || json.Unmarshal(body, &r) != nil || r.Version == "" || r.URL == "" || r.Error != "" {
		return nil, fmt.Errorf("update check answered HTTP %d %s, want an update", status, body)
	}
	return body, nil
}

// waitWarm waits for otad's `release state loaded` log line (every app
// loaded, see server.WarmUp) and returns the time it reports.
func waitWarm(ctx context.Context, p *proc, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		data, err := os.ReadFile(p.logPath)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", p.logPath, err)
		}
		for line := range bytes.Lines(data) {
			var l struct{ Msg, Took string }
			if json.Unmarshal(line, &l) == nil && l.Msg == "release state loaded" {
				return l.Took, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not log `release state loaded` within %s; see %s", p.name, timeout, p.logPath)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-p.exited:
			return "", fmt.Errorf("%s exited while loading apps; see %s", p.name, p.logPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitReady polls /readyz until it answers 200.
func waitReady(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		status, _, err := load.Do(addr, load.Request{Method: "GET", Path: "/readyz"})
		if err == nil && status == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz not 200 within %s (last: %d %v)", timeout, status, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// jsonField pulls one string field out of a JSON object, for short probes.
func jsonField(body []byte, key string) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	s, _ := m[key].(string)
	return strings.TrimSpace(s)
}
