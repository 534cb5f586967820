package daemon

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/otaship/ota/internal/blob/s3"
	downloads "github.com/otaship/ota/internal/download"
	"github.com/otaship/ota/internal/store/postgres"
)

// Configuration keys. They are the flag names, the keys of otad.yaml and,
// upper-cased with OTAD_ in front and "-" as "_", the environment
// variables. They are a contract with operators: never rename one.
const (
	keyAddr          = "addr"
	keyDataDir       = "data-dir"
	keyPublicURL     = "public-url"
	keyDefaultApp    = "default-app"
	keyTokenTTL      = "token-ttl"
	keyMaxUploadSize = "max-upload-size"
	keyJWTKeyFile    = "jwt-key-file"
	keyLogLevel      = "log-level"
	keyLogFormat     = "log-format"
	keyTrustProxy    = "trust-proxy"
	keyAddrFile      = "addr-file"
	keyMetricsAddr   = "metrics-addr"
	keyMetricsToken  = "metrics-token"
	keyConfig        = "config"
	keyDeviceRate    = "device-rate-limit"
	keyTLSCert       = "tls-cert"
	keyTLSKey        = "tls-key"
	keyDatabaseURL   = "database-url"
	// Bundles on S3-compatible storage and downloads that bypass otad
	// (issue 11).
	keyBlobURL         = "blob-url"
	keyS3Endpoint      = "s3-endpoint"
	keyS3Region        = "s3-region"
	keyS3PathStyle     = "s3-path-style"
	keyDownloadBaseURL = "download-base-url"
	keyPresignTTL      = "presign-ttl"
	keyDashboard       = "dashboard"
	keyIPv6Prefix      = "rate-limit-ipv6-prefix"
	keyWebhookLocal    = "webhook-allow-private"
)

// Defaults of the settings that have one.
const (
	defaultAddr          = "127.0.0.1:8080"
	defaultDataDir       = "./otad-data"
	defaultTokenTTL      = 12 * time.Hour
	defaultMaxUploadSize = 512 << 20
	defaultLogLevel      = "info"
	defaultLogFormat     = "auto"
	// defaultDeviceRate is per client address and endpoint group; a
	// carrier's NAT puts many phones behind one address, so it is far
	// above what one device sends (one check per launch or resume).
	defaultDeviceRate = 20
	// defaultIPv6Prefix: one subscriber usually gets a /64 and may use
	// any address in it.
	defaultIPv6Prefix = 64
)

// fileKeys are the keys otad.yaml may hold. --config and --addr-file are
// per-invocation and make no sense in the file.
var fileKeys = []string{
	keyAddr, keyDataDir, keyPublicURL, keyDefaultApp, keyTokenTTL,
	keyMaxUploadSize, keyJWTKeyFile, keyLogLevel, keyLogFormat, keyTrustProxy,
	keyMetricsAddr, keyMetricsToken, keyDeviceRate, keyTLSCert, keyTLSKey, keyDatabaseURL,
	keyBlobURL, keyS3Endpoint, keyS3Region, keyS3PathStyle, keyDownloadBaseURL, keyPresignTTL,
	keyDashboard,
	keyIPv6Prefix, keyWebhookLocal,
}

// envName is the environment variable of a configuration key.
func envName(key string) string {
	return "OTAD_" + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// config is otad's resolved configuration.
type config struct {
	Addr           string
	DataDir        string
	PublicURL      string // empty: derived from the bound address
	DefaultApp     string
	TokenTTL       time.Duration
	MaxUploadBytes int64
	JWTKeyFile     string
	LogLevel       string
	LogFormat      string
	TrustProxy     bool // key rate limits on X-Forwarded-For
	AddrFile       string
	ConfigFile     string // the file the settings came from, if any
	// MetricsAddr is a listener of its own for /metrics; MetricsToken
	// serves /metrics on the main listener to requests bearing it.
	MetricsAddr  string
	MetricsToken string
	// DeviceRateLimit is requests per second per address on each device
	// endpoint group; 0 is off.
	DeviceRateLimit float64
	// TLSCert and TLSKey are PEM files; with both set otad serves HTTPS.
	TLSCert string
	TLSKey  string
	// DatabaseURL, when set, is the PostgreSQL database holding the
	// metadata instead of the bbolt file in the data dir. It may hold a
	// password: log it only through postgres.Redact.
	DatabaseURL string

	// BlobURL is s3://BUCKET/PREFIX, "" for the local blob directory;
	// S3Bucket and S3Prefix are its parts.
	BlobURL     string
	S3Bucket    string
	S3Prefix    string
	S3Endpoint  string // full URL, "" for AWS
	S3Region    string // "" asks the server
	S3PathStyle bool
	// DownloadBaseURL is a CDN devices download bundles from, "".
	DownloadBaseURL string
	// PresignTTL is the lifetime of presigned download URLs;
	// PresignTTLSet says whether it was configured (it only matters with
	// the bucket and no CDN).
	PresignTTL    time.Duration
	PresignTTLSet bool
	// Dashboard serves the dashboard at /ui.
	Dashboard bool
	// IPv6Prefix is how many leading bits of an IPv6 address rate limits
	// count as one client.
	IPv6Prefix int
	// WebhookAllowPrivate lets webhooks reach loopback, private and
	// link-local addresses.
	WebhookAllowPrivate bool
}

// minMetricsToken is the shortest accepted --metrics-token: it guards the
// metrics on a public listener.
const minMetricsToken = 16

// DBPath is the metadata store's file.
func (c *config) DBPath() string { return filepath.Join(c.DataDir, "otad.db") }

// BlobDir is the bundle store's directory.
func (c *config) BlobDir() string { return filepath.Join(c.DataDir, "blobs") }

// loadConfig resolves the settings from, in order of precedence, the flags
// that were set, the environment (through getenv, so tests never touch the
// process environment), the config file and the defaults.
//
// Viper reads the process environment itself, which tests cannot isolate,
// so the environment is merged over the file's values here instead; flags
// still beat both because viper consults a changed flag first.
func loadConfig(flags *pflag.FlagSet, getenv func(string) string) (*config, error) {
	v := viper.New()
	v.SetDefault(keyAddr, defaultAddr)
	v.SetDefault(keyDataDir, defaultDataDir)
	v.SetDefault(keyTokenTTL, defaultTokenTTL.String())
	v.SetDefault(keyMaxUploadSize, formatSize(defaultMaxUploadSize))
	v.SetDefault(keyLogLevel, defaultLogLevel)
	v.SetDefault(keyLogFormat, defaultLogFormat)
	v.SetDefault(keyTrustProxy, "false")
	v.SetDefault(keyDeviceRate, strconv.Itoa(defaultDeviceRate))
	v.SetDefault(keyS3PathStyle, "false")
	v.SetDefault(keyPresignTTL, downloads.DefaultTTL.String())
	v.SetDefault(keyIPv6Prefix, strconv.Itoa(defaultIPv6Prefix))
	v.SetDefault(keyWebhookLocal, "false")
	fileSettings := map[string]any{}
	v.SetDefault(keyDashboard, "true")

	for _, key := range append(slices.Clone(fileKeys), keyAddrFile, keyConfig) {
		if f := flags.Lookup(key); f != nil {
			if err := v.BindPFlag(key, f); err != nil {
				return nil, fmt.Errorf("bind flag --%s: %w", key, err)
			}
		}
	}

	cfgFile := getenv(envName(keyConfig))
	if f := flags.Lookup(keyConfig); f != nil && f.Changed {
		cfgFile = f.Value.String()
	}
	if cfgFile != "" {
		settings, err := readConfigFile(cfgFile)
		if err != nil {
			return nil, err
		}
		fileSettings = settings
		if err := v.MergeConfigMap(settings); err != nil {
			return nil, fmt.Errorf("apply config file %s: %w", cfgFile, err)
		}
	}

	env := map[string]any{}
	for _, key := range append(slices.Clone(fileKeys), keyAddrFile) {
		if val := getenv(envName(key)); val != "" {
			env[key] = val
		}
	}
	if err := v.MergeConfigMap(env); err != nil {
		return nil, fmt.Errorf("apply environment: %w", err)
	}

	c := &config{
		Addr:       v.GetString(keyAddr),
		DataDir:    v.GetString(keyDataDir),
		PublicURL:  strings.TrimRight(v.GetString(keyPublicURL), "/"),
		DefaultApp: v.GetString(keyDefaultApp),
		JWTKeyFile: v.GetString(keyJWTKeyFile),
		LogLevel:   strings.ToLower(v.GetString(keyLogLevel)),
		LogFormat:  strings.ToLower(v.GetString(keyLogFormat)),
		AddrFile:   v.GetString(keyAddrFile),
		ConfigFile: cfgFile,

		MetricsAddr:  v.GetString(keyMetricsAddr),
		MetricsToken: v.GetString(keyMetricsToken),
		TLSCert:      v.GetString(keyTLSCert),
		TLSKey:       v.GetString(keyTLSKey),
		DatabaseURL:  strings.TrimSpace(v.GetString(keyDatabaseURL)),

		BlobURL:         strings.TrimSpace(v.GetString(keyBlobURL)),
		S3Endpoint:      strings.TrimRight(strings.TrimSpace(v.GetString(keyS3Endpoint)), "/"),
		S3Region:        strings.TrimSpace(v.GetString(keyS3Region)),
		DownloadBaseURL: strings.TrimRight(strings.TrimSpace(v.GetString(keyDownloadBaseURL)), "/"),
	}
	// Whether the operator set it, not its flag's default.
	isSet := func(key string) bool {
		if f := flags.Lookup(key); f != nil && f.Changed {
			return true
		}
		_, inFile := fileSettings[key]
		return inFile || getenv(envName(key)) != ""
	}
	c.PresignTTLSet = isSet(keyPresignTTL)
	var errs []error
	if c.Addr == "" {
		errs = append(errs, fmt.Errorf("%s must not be empty", keyAddr))
	}
	if c.DataDir == "" {
		errs = append(errs, fmt.Errorf("%s must not be empty", keyDataDir))
	}
	if c.JWTKeyFile == "" {
		c.JWTKeyFile = filepath.Join(c.DataDir, "jwt.key")
	}
	ttl, err := time.ParseDuration(v.GetString(keyTokenTTL))
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("%s %q: want a duration such as 12h or 30m", keyTokenTTL, v.GetString(keyTokenTTL)))
	case ttl < time.Minute:
		errs = append(errs, fmt.Errorf("%s %s is shorter than a minute", keyTokenTTL, ttl))
	}
	c.TokenTTL = ttl
	if c.MaxUploadBytes, err = parseSize(v.GetString(keyMaxUploadSize)); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", keyMaxUploadSize, err))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if !slices.Contains([]string{"auto", "json", "text"}, c.LogFormat) {
		errs = append(errs, fmt.Errorf("%s %q: want json, text or auto", keyLogFormat, c.LogFormat))
	}
	if c.TrustProxy, err = strconv.ParseBool(v.GetString(keyTrustProxy)); err != nil {
		errs = append(errs, fmt.Errorf("%s %q: want true or false", keyTrustProxy, v.GetString(keyTrustProxy)))
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want host:port, e.g. 127.0.0.1:9090", keyMetricsAddr, c.MetricsAddr))
		}
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < minMetricsToken {
		errs = append(errs, fmt.Errorf("%s is %d characters; use at least %d random ones (openssl rand -hex 16)",
			keyMetricsToken, len(c.MetricsToken), minMetricsToken))
	}
	rate, err := strconv.ParseFloat(strings.TrimSpace(v.GetString(keyDeviceRate)), 64)
	switch {
	case err != nil || math.IsNaN(rate) || math.IsInf(rate, 0):
		errs = append(errs, fmt.Errorf("%s %q: want requests per second per address, e.g. 20, or 0 for no limit", keyDeviceRate, v.GetString(keyDeviceRate)))
	case rate < 0:
		errs = append(errs, fmt.Errorf("%s %v is negative; use 0 for no limit", keyDeviceRate, rate))
	}
	c.DeviceRateLimit = rate
	if c.Dashboard, err = strconv.ParseBool(v.GetString(keyDashboard)); err != nil {
		errs = append(errs, fmt.Errorf("%s %q: want true or false", keyDashboard, v.GetString(keyDashboard)))
	}
	prefix, err := strconv.Atoi(strings.TrimSpace(v.GetString(keyIPv6Prefix)))
	if err != nil || prefix < 32 || prefix > 128 {
		errs = append(errs, fmt.Errorf("%s %q: want a prefix length from 32 to 128, e.g. 64 (one subscriber) or 128 (one address)", keyIPv6Prefix, v.GetString(keyIPv6Prefix)))
	}
	c.IPv6Prefix = prefix
	if c.WebhookAllowPrivate, err = strconv.ParseBool(v.GetString(keyWebhookLocal)); err != nil {
		errs = append(errs, fmt.Errorf("%s %q: want true or false", keyWebhookLocal, v.GetString(keyWebhookLocal)))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, fmt.Errorf("%s and %s go together: set both for HTTPS, or neither for plain HTTP", keyTLSCert, keyTLSKey))
	}
	if u := c.DatabaseURL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		errs = append(errs, fmt.Errorf("%s %s: want postgres://USER:PASSWORD@HOST:PORT/DATABASE, or leave it unset for the bbolt file in the data dir",
			keyDatabaseURL, postgres.Redact(u)))
	}
	errs = append(errs, c.checkStorage(v)...)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	return c, nil
}

// checkS3WithoutBucket refuses --s3-* settings that no bucket uses, for
// otad serve. (A migration names its bucket elsewhere, --to-bucket, and
// needs them without --blob-url.)
func (c *config) checkS3WithoutBucket() error {
	if c.BlobURL != "" {
		return nil
	}
	for k, v := range map[string]string{keyS3Endpoint: c.S3Endpoint, keyS3Region: c.S3Region} {
		if v != "" {
			return fmt.Errorf("invalid configuration: %s is a setting of the S3 backend: set %s s3://BUCKET/PREFIX too, or drop it", k, keyBlobURL)
		}
	}
	return nil
}

// checkStorage resolves the blob store and download settings.
func (c *config) checkStorage(v *viper.Viper) []error {
	var errs []error
	if c.BlobURL != "" {
		var err error
		if c.S3Bucket, c.S3Prefix, err = s3.ParseURL(c.BlobURL); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", keyBlobURL, err))
		}
	}
	var err error
	if c.S3PathStyle, err = strconv.ParseBool(v.GetString(keyS3PathStyle)); err != nil {
		errs = append(errs, fmt.Errorf("%s %q: want true or false", keyS3PathStyle, v.GetString(keyS3PathStyle)))
	}
	if c.S3Endpoint != "" {
		if u, err := url.Parse(c.S3Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("%s %q: want the server's full URL with no path, e.g. http://127.0.0.1:9000 or https://s3.eu-west-1.amazonaws.com", keyS3Endpoint, c.S3Endpoint))
		}
	}
	if c.DownloadBaseURL != "" {
		if err := downloads.CheckURL(keyDownloadBaseURL, c.DownloadBaseURL); err != nil {
			errs = append(errs, err)
		}
	}
	raw := v.GetString(keyPresignTTL)
	ttl, err := time.ParseDuration(raw)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("%s %q: want a duration such as 1h or 30m", keyPresignTTL, raw))
	case ttl < downloads.MinTTL || ttl > downloads.MaxTTL:
		errs = append(errs, fmt.Errorf("%s %s: want between %s and %s (168h, the longest an S3 signature lasts)", keyPresignTTL, ttl, downloads.MinTTL, downloads.MaxTTL))
	}
	c.PresignTTL = ttl
	return errs
}

// readConfigFile loads otad.yaml (or .json/.toml, by extension) and refuses
// keys otad does not know, so a misspelt setting is not silently ignored.
func readConfigFile(path string) (map[string]any, error) {
	fv := viper.New()
	fv.SetConfigFile(path)
	if filepath.Ext(path) == "" {
		fv.SetConfigType("yaml")
	}
	if err := fv.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("read config file %s: %w", path, err)
	}
	var unknown []string
	for _, k := range fv.AllKeys() {
		if !slices.Contains(fileKeys, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("config file %s: unknown keys %s (known: %s)", path,
			strings.Join(unknown, ", "), strings.Join(fileKeys, ", "))
	}
	return fv.AllSettings(), nil
}
