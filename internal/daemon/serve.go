package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/otaship/ota/internal/auth"
	"github.com/otaship/ota/internal/blob"
	downloads "github.com/otaship/ota/internal/download"
	"github.com/otaship/ota/internal/server"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/postgres"
	"github.com/otaship/ota/internal/version"
	"github.com/otaship/ota/internal/webhook"
)

// Timeouts of the HTTP server. There is no read or write timeout on whole
// requests: uploads of large APKs and downloads on slow phone links may take
// many minutes; the server package bounds bodies by size instead.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 30 * time.Second
	// blobGrace keeps unreferenced blobs this young: they may belong to an
	// upload whose metadata is not committed yet, here or on another
	// replica sharing the bucket (a Put of bytes stored already renews
	// their time, see blob.Store).
	blobGrace = time.Hour
	// blobCollectEvery is how often unreferenced blobs are collected after
	// the one at start.
	blobCollectEvery = 6 * time.Hour
	// tmpGrace keeps what interrupted uploads left in a shared store (a
	// bucket) this long: an upload on another replica may still be
	// sending its parts, over a slow link.
	tmpGrace = 24 * time.Hour
)

func newServeCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the release server",
		Long: `Run the release server on the data directory until SIGINT or SIGTERM.

On the first start otad creates the data directory, the database, the token
signing key and, when there are no users, the user "admin" with a random
password that it prints once on the terminal. Set OTAD_ADMIN_USER and
OTAD_ADMIN_PASSWORD to create a user of your choice instead (for containers);
they never change an existing user's password (otad warns when they differ).
A start on a data directory that has users names them and how to reset a
password (otad user passwd NAME, with otad stopped).

With --database-url (OTAD_DATABASE_URL) the metadata (apps, channels,
bundle records, history, users, tokens, webhooks, device stats) lives in
that PostgreSQL database instead of the data dir's bbolt file; otad creates
or migrates its tables at start. The data dir still holds the bundle files
and the signing key. Move an existing data dir there with otad migrate.`,
		Example: `  otad serve
  otad serve --addr :8080 --public-url https://ota.example.com --data-dir /var/lib/otad
  OTAD_ADMIN_USER=ci OTAD_ADMIN_PASSWORD=... otad serve --config /etc/otad.yaml
  OTAD_DATABASE_URL=postgres://otad:...@db.internal:5432/otad otad serve --data-dir /var/lib/otad`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags(), e.getenv)
			if err == nil {
				err = cfg.checkS3WithoutBucket()
			}
			if err != nil {
				return &usageError{err}
			}
			return serve(cmd.Context(), e, cfg)
		},
	}
	f := cmd.Flags()
	f.String(keyAddr, defaultAddr, "address to listen on, host:port ($OTAD_ADDR)")
	f.String(keyPublicURL, "", "URL devices and otactl reach this server at; download URLs are built from it (default http://<addr>) ($OTAD_PUBLIC_URL)")
	f.String(keyDefaultApp, "", "app id meant by requests that name none, as the old worker's paths ($OTAD_DEFAULT_APP)")
	f.Duration(keyTokenTTL, defaultTokenTTL, "lifetime of login tokens ($OTAD_TOKEN_TTL)")
	f.String(keyMaxUploadSize, formatSize(defaultMaxUploadSize), "largest accepted bundle, e.g. 200MB, 1GiB or bytes ($OTAD_MAX_UPLOAD_SIZE)")
	f.String(keyJWTKeyFile, "", "file of the token signing key, created with mode 0600 when missing (default <data-dir>/jwt.key) ($OTAD_JWT_KEY_FILE)")
	f.String(keyLogLevel, defaultLogLevel, "debug, info, warn or error ($OTAD_LOG_LEVEL)")
	f.String(keyLogFormat, defaultLogFormat, "json, text or auto: text on a terminal, JSON otherwise ($OTAD_LOG_FORMAT)")
	f.Bool(keyTrustProxy, false, "key login and device rate limits on X-Forwarded-For/X-Real-IP; only behind a proxy that overwrites them ($OTAD_TRUST_PROXY)")
	f.String(keyMetricsAddr, "", "serve /metrics (Prometheus) on this separate address, e.g. 127.0.0.1:9090 ($OTAD_METRICS_ADDR)")
	f.String(keyMetricsToken, "", "serve /metrics on the main address to requests with this bearer token ($OTAD_METRICS_TOKEN)")
	f.Float64(keyDeviceRate, defaultDeviceRate, "requests per second one client address may send to each device endpoint group (updates, stats, channel), bursts of 5x; 0 turns it off ($OTAD_DEVICE_RATE_LIMIT)")
	f.String(keyTLSCert, "", "PEM certificate (chain) file; with --tls-key otad serves HTTPS itself, and picks up files renewed in place within 10 s ($OTAD_TLS_CERT)")
	f.String(keyTLSKey, "", "PEM private key file of --tls-cert ($OTAD_TLS_KEY)")
	f.Bool(keyDashboard, true, "serve the dashboard at /ui, for the same users as the admin API ($OTAD_DASHBOARD)")
	f.Int(keyIPv6Prefix, defaultIPv6Prefix, "leading bits of an IPv6 address that login and device rate limits count as one client: 64 is one subscriber, 128 one address ($OTAD_RATE_LIMIT_IPV6_PREFIX)")
	f.Bool(keyWebhookLocal, false, "let webhooks reach loopback, private and link-local addresses (refused by default, when added and at every delivery) ($OTAD_WEBHOOK_ALLOW_PRIVATE)")
	f.String(keyAddrFile, "", "write the bound address to this file once listening, for --addr 127.0.0.1:0 ($OTAD_ADDR_FILE)")
	f.String(keyBlobURL, "", "keep bundles in this bucket of S3-compatible storage, s3://BUCKET/PREFIX, instead of <data-dir>/blobs; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials ($OTAD_BLOB_URL)")
	f.String(keyS3Endpoint, "", "S3 server's full URL, e.g. http://127.0.0.1:9000 (default AWS) ($OTAD_S3_ENDPOINT)")
	f.String(keyS3Region, "", "bucket's region (default: asked from the server at start) ($OTAD_S3_REGION)")
	f.Bool(keyS3PathStyle, false, "address the bucket as ENDPOINT/BUCKET, as MinIO and most self-hosted servers want ($OTAD_S3_PATH_STYLE)")
	f.String(keyDownloadBaseURL, "", "CDN devices download bundles from: its base plus the bundle's content address (sha256/ab/<sha256> under the bucket prefix, or otad's /api/ota/bundle/… route without a bucket) ($OTAD_DOWNLOAD_BASE_URL)")
	f.Duration(keyPresignTTL, downloads.DefaultTTL, "lifetime of the presigned URLs devices download from with --blob-url and no --download-base-url; devices always get one with over half of it left ($OTAD_PRESIGN_TTL)")
	return cmd
}

// serve runs otad until ctx ends, then drains in-flight requests.
func serve(ctx context.Context, e *env, cfg *config) error {
	log, err := newLogger(e.stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	cost, err := e.bcryptCost()
	if err != nil {
		return err
	}
	// The data dir holds the bundle files and the signing key in either
	// configuration; made here, before anything is written into it.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	st, err := openConfiguredStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close database", "err", err)
		}
	}()
	warnIfShared(cfg.DataDir, log)
	blobs, bucket, err := openBlobs(ctx, cfg, e.getenv)
	if err != nil {
		return err
	}
	key, err := auth.LoadOrCreateKey(cfg.JWTKeyFile)
	if err != nil {
		return fmt.Errorf("token signing key: %w", err)
	}
	issuer, err := auth.NewIssuer(key, auth.Options{TTL: cfg.TokenTTL})
	if err != nil {
		return fmt.Errorf("token issuer: %w", err)
	}
	// Loaded before listening, so a wrong path or a key that does not
	// match fails the start instead of every handshake.
	tlsCfg, err := loadTLS(cfg.TLSCert, cfg.TLSKey, log)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close() // after Serve this is a no-op; before, it frees the port on an error
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = derivePublicURL(ln.Addr(), log)
		if tlsCfg != nil {
			publicURL = "https://" + strings.TrimPrefix(publicURL, "http://")
		}
	}

	if err := ensureUsers(ctx, e, st, cost, cfg.DataDir, publicURL, log); err != nil {
		return err
	}
	links, err := newLocator(cfg, publicURL, bucket, log)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Config{
		PublicURL:       publicURL,
		DefaultApp:      cfg.DefaultApp,
		TokenTTL:        cfg.TokenTTL,
		MaxUploadBytes:  cfg.MaxUploadBytes,
		Version:         version.Info(),
		TrustProxy:      cfg.TrustProxy,
		MetricsToken:    cfg.MetricsToken,
		DeviceRateLimit: cfg.DeviceRateLimit,
		IPv6Prefix:      cfg.IPv6Prefix,
		BcryptCost:      cost,
		Downloads:       links,
		Webhooks:        webhook.Options{AllowPrivate: cfg.WebhookAllowPrivate},
	}, st, blobs, issuer, log)
	if err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	// Deferred: it runs once the HTTP server has drained and before the
	// store closes, so attempts in flight can still log their outcome.
	defer srv.Close()
	if cfg.Dashboard {
		if err := mountDashboard(srv, st, key, publicURL, cfg.TrustProxy, log); err != nil {
			return err
		}
	}
	// Collecting unreferenced bundle files reads every bundle record (a
	// million on a big store) and only frees disk, so it runs while the
	// server already answers instead of delaying the start, and then every
	// blobCollectEvery (replicas sharing a bucket may run for months).
	// blobGrace keeps the files of uploads running meanwhile.
	// Apps' release state loads in the background too (server.WarmUp):
	// until an app is loaded its first request reads it from the store.
	// Then, hourly, device health nobody needs any more is pruned.
	warmCtx, stopWarm := context.WithCancel(ctx)
	warmDone := make(chan struct{})
	go func() {
		defer close(warmDone)
		srv.WarmUp(warmCtx)
		pruneHealth(warmCtx, srv, log)
	}()
	defer func() { stopWarm(); <-warmDone }() // before the store closes
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		collectBlobsEvery(ctx, st, blobs, blobCollectEvery, log)
	}()
	defer func() { <-gcDone }() // before the store closes
	_, stopMetrics, err := serveMetrics(cfg.MetricsAddr, srv.MetricsHandler(), log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsCfg,
	}
	served := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			served <- hs.ServeTLS(ln, "", "") // the certificate is in TLSConfig
			return
		}
		served <- hs.Serve(ln)
	}()

	if cfg.AddrFile != "" {
		if err := writeFileAtomic(cfg.AddrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			_ = hs.Close()
			<-served
			return fmt.Errorf("write address file: %w", err)
		}
	}
	log.Info("otad listening", "addr", ln.Addr().String(), "public_url", publicURL,
		"data_dir", cfg.DataDir, "database", databaseName(cfg), "version", version.Info().Version)

	select {
	case err := <-served:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}

	// Devices and load balancers see /readyz fail first; Shutdown then stops
	// accepting and waits for in-flight requests (uploads included).
	log.Info("shutting down", "grace", shutdownTimeout.String())
	srv.SetReady(false)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("requests still running at the end of the grace period were cut off", "err", err)
		_ = hs.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http server", "err", err)
	}
	log.Info("stopped")
	return nil
}

// databaseName says where the metadata is, for the log: never the
// database URL's password.
func databaseName(cfg *config) string {
	if cfg.DatabaseURL == "" {
		return cfg.DBPath()
	}
	return postgres.Redact(cfg.DatabaseURL)
}

// warnIfShared warns when other users can read the data dir, which holds
// the signing key and the password hashes. otad creates it 0700 but leaves
// an existing directory's mode alone: the operator may have reasons.
func warnIfShared(dir string, log *slog.Logger) {
	if runtime.GOOS == "windows" {
		return // permission bits mean nothing there
	}
	fi, err := os.Stat(dir)
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the data dir is accessible to other users; restrict it with chmod 700",
			"data_dir", dir, "mode", fmt.Sprintf("%#o", fi.Mode().Perm()))
	}
}

// derivePublicURL is the default public URL: the bound address. A wildcard
// host (":8080") is not an address anyone can reach, so localhost stands in
// and the operator is told to set --public-url.
func derivePublicURL(addr net.Addr, log *slog.Logger) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		log.Warn("no public URL configured and listening on every interface; download URLs will say localhost: set --public-url to the URL devices reach",
			"addr", addr.String())
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// collectBlobs deletes bundle files no bundle record refers to any more,
// keeping those younger than grace. It only logs failures: a leftover
// file costs disk, not correctness.
//
// Delta file records no live release names go first (older than grace:
// younger ones may belong to a release being uploaded), so their blobs
// are collected in the same run. A record a release names is kept, and a
// record keeps its blobs: otad never lists a file it no longer has as
// present.
func collectBlobs(ctx context.Context, st store.Store, bl blob.Store, now time.Time, grace time.Duration, log *slog.Logger) {
	if n, err := st.PruneDeltaFiles(ctx, now.Add(-grace)); err != nil {
		log.Warn("skipped forgetting unreferenced delta files", "err", err)
	} else if n > 0 {
		log.Info("forgot delta files no release names", "count", n)
	}
	// Files old enough first: without any, the bundle records (a million
	// on a big store) need not be read at all.
	var old []blob.Info
	err := bl.List(ctx, func(i blob.Info) error {
		if now.Sub(i.ModTime) > grace {
			old = append(old, i)
		}
		return nil
	})
	if err != nil {
		log.Warn("skipped collecting unreferenced bundles", "err", err)
		return
	}
	if len(old) == 0 {
		return
	}
	refs, err := st.ReferencedBlobs(ctx)
	if err != nil {
		log.Warn("skipped collecting unreferenced bundles", "err", err)
		return
	}
	var n, size int64
	for _, i := range old {
		if refs[i.SHA256] {
			continue
		}
		// Asked again just before deleting: a Put since the listing (an
		// upload of the same bytes, perhaps on another replica, about to
		// publish them) renewed the time.
		if cur, err := bl.Stat(ctx, i.SHA256); err != nil || now.Sub(cur.ModTime) <= grace {
			continue
		}
		if err := bl.Delete(ctx, i.SHA256); err != nil {
			log.Warn("delete unreferenced bundle", "sha256", i.SHA256, "err", err)
			continue
		}
		n++
		size += i.Size
	}
	if n > 0 {
		log.Info("collected unreferenced bundles", "count", n, "bytes", size)
	}
}

// collectBlobsEvery collects unreferenced blobs now and then every
// interval until ctx ends, and sweeps what interrupted uploads left in a
// shared store.
func collectBlobsEvery(ctx context.Context, st store.Store, bl blob.Store, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		collectBlobs(ctx, st, bl, time.Now(), blobGrace, log)
		if sw, ok := bl.(blob.Sweeper); ok {
			n, err := sw.Sweep(ctx, tmpGrace)
			if err != nil && ctx.Err() == nil {
				log.Warn("sweep interrupted uploads", "err", err)
			}
			if n > 0 {
				log.Info("removed what interrupted uploads left", "count", n, "older_than", tmpGrace.String())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so a reader polling for the file never sees it half written.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// serveMetrics serves /metrics on addr, a listener of its own that can
// stay private (loopback, or a network only Prometheus reaches). It
// returns the bound address and the function that stops it; without addr
// it does nothing.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (bound string, stop func(), err error) {
	if addr == "" {
		return "", func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	return ln.Addr().String(), func() { _ = hs.Close() }, nil
}

// healthPruneInterval is how often otad prunes old device health.
const healthPruneInterval = time.Hour

// pruneHealth runs server.PruneHealth now and every healthPruneInterval
// until ctx ends.
func pruneHealth(ctx context.Context, srv *server.Server, log *slog.Logger) {
	t := time.NewTicker(healthPruneInterval)
	defer t.Stop()
	for {
		switch n, err := srv.PruneHealth(ctx); {
		case err != nil:
			log.Error("prune device health; retrying in an hour", "err", err)
		case n > 0:
			log.Info("device health pruned", "versions", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
