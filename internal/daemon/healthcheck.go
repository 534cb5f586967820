package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newHealthcheckCmd(e *env) *cobra.Command {
	var target string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if a running otad answers its readiness probe",
		Long: `Ask a running otad whether it is ready (GET /readyz) and exit 0 if it
answers 200, 1 otherwise. It is meant for container health checks in images
that have no curl. Without --url it asks the address otad is configured to
listen on (--addr, OTAD_ADDR or the config file), on the loopback interface
when that address is a wildcard.`,
		Example: "  otad healthcheck\n  otad healthcheck --url http://127.0.0.1:8080/readyz",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// An otad serving TLS itself is probed over HTTPS on the loopback
			// address, where its certificate's name cannot match; the probe
			// sends nothing secret, so it does not verify the certificate.
			skipVerify := false
			if target == "" {
				cfg, err := loadConfig(cmd.Flags(), e.getenv)
				if err != nil {
					return &usageError{err}
				}
				target = readyzURL(cfg.Addr)
				if cfg.TLSCert != "" {
					target = "https://" + strings.TrimPrefix(target, "http://")
					skipVerify = true
				}
			}
			u, err := url.Parse(target)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return &usageError{fmt.Errorf("--url %q: want an absolute http(s) URL", target)}
			}
			return healthcheck(cmd.Context(), target, timeout, skipVerify)
		},
	}
	cmd.Flags().StringVar(&target, "url", "", "URL to probe (default http://<addr>/readyz)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	cmd.Flags().String(keyAddr, defaultAddr, "address otad listens on ($OTAD_ADDR)")
	return cmd
}

// readyzURL is the readiness URL of an otad listening on addr.
func readyzURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/readyz"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}

func healthcheck(ctx context.Context, target string, timeout time.Duration, skipVerify bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", target, err)
	}
	// No proxy: the probe is meant for this host's otad.
	client := &http.Client{Transport: &http.Transport{Proxy: nil,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: skipVerify}}} //nolint:gosec // loopback probe, see above
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", target, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: %s", target, resp.Status)
	}
	return nil
}
