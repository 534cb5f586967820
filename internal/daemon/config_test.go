package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// mapEnv is a getenv over a map, so no test reads the process environment.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// parseServeFlags builds the real command tree, parses args as serve's
// command line and returns the serve command with its flags set.
func parseServeFlags(t *testing.T, args ...string) *cobra.Command {
	t.Helper()
	root := newRootCmd(&env{getenv: mapEnv(nil)})
	cmd, rest, err := root.Find(append([]string{"serve"}, args...))
	if err != nil {
		t.Fatalf("find serve: %v", err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("parse flags %q: %v", args, err)
	}
	return cmd
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "otad.yaml", `
addr: 127.0.0.1:7001
data-dir: /from/file
token-ttl: 1h
max-upload-size: 1GiB
default-app: com.file.app
log-format: text
trust-proxy: true
`)
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c *config)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c *config) {
				want := config{Addr: defaultAddr, DataDir: defaultDataDir, TokenTTL: 12 * time.Hour,
					MaxUploadBytes: 512 << 20, JWTKeyFile: filepath.Join(defaultDataDir, "jwt.key"),
					LogLevel: "info", LogFormat: "auto", DeviceRateLimit: defaultDeviceRate, PresignTTL: time.Hour, Dashboard: true, IPv6Prefix: defaultIPv6Prefix}
				if *c != want {
					t.Errorf("config = %+v\nwant     %+v", *c, want)
				}
			},
		},
		{
			name: "file beats defaults",
			args: []string{"--config", file},
			check: func(t *testing.T, c *config) {
				if c.Addr != "127.0.0.1:7001" || c.DataDir != "/from/file" || c.TokenTTL != time.Hour ||
					c.MaxUploadBytes != 1<<30 || c.DefaultApp != "com.file.app" || c.LogFormat != "text" {
					t.Errorf("config = %+v, want the file's values", *c)
				}
				if c.JWTKeyFile != filepath.Join("/from/file", "jwt.key") {
					t.Errorf("JWTKeyFile = %q, want it in the file's data dir", c.JWTKeyFile)
				}
				if c.LogLevel != "info" {
					t.Errorf("LogLevel = %q, want the default info", c.LogLevel)
				}
				if !c.TrustProxy {
					t.Errorf("TrustProxy = false, want the file's true")
				}
			},
		},
		{
			name: "env beats file",
			args: []string{"--config", file},
			env:  map[string]string{"OTAD_ADDR": "127.0.0.1:7002", "OTAD_MAX_UPLOAD_SIZE": "200MB", "OTAD_TOKEN_TTL": "30m"},
			check: func(t *testing.T, c *config) {
				if c.Addr != "127.0.0.1:7002" || c.MaxUploadBytes != 200_000_000 || c.TokenTTL != 30*time.Minute {
					t.Errorf("config = %+v, want the environment's values", *c)
				}
				if c.DataDir != "/from/file" {
					t.Errorf("DataDir = %q, want the file's value where env is silent", c.DataDir)
				}
			},
		},
		{
			name: "flag beats env and file",
			args: []string{"--config", file, "--addr", "127.0.0.1:7003", "--data-dir", "/from/flag", "--max-upload-size", "1048576", "--trust-proxy=false"},
			env:  map[string]string{"OTAD_ADDR": "127.0.0.1:7002", "OTAD_DATA_DIR": "/from/env", "OTAD_TRUST_PROXY": "true"},
			check: func(t *testing.T, c *config) {
				if c.Addr != "127.0.0.1:7003" || c.DataDir != "/from/flag" || c.MaxUploadBytes != 1<<20 || c.TrustProxy {
					t.Errorf("config = %+v, want the flags' values", *c)
				}
			},
		},
		{
			name: "config file from env",
			env:  map[string]string{"OTAD_CONFIG": file},
			check: func(t *testing.T, c *config) {
				if c.Addr != "127.0.0.1:7001" || c.ConfigFile != file {
					t.Errorf("config = %+v, want the file named by OTAD_CONFIG", *c)
				}
			},
		},
		{
			name: "database url: flag beats env beats file",
			args: []string{"--config", writeFile(t, dir, "db.yaml", "database-url: postgres://file@db/otad\n")},
			env:  map[string]string{"OTAD_DATABASE_URL": " postgres://env@db/otad "},
			check: func(t *testing.T, c *config) {
				if c.DatabaseURL != "postgres://env@db/otad" {
					t.Errorf("DatabaseURL = %q, want the environment's, trimmed", c.DatabaseURL)
				}
				cmd := parseServeFlags(t, "--database-url", "postgresql://flag@db/otad")
				c, err := loadConfig(cmd.Flags(), mapEnv(map[string]string{"OTAD_DATABASE_URL": "postgres://env@db/otad"}))
				if err != nil || c.DatabaseURL != "postgresql://flag@db/otad" {
					t.Errorf("DatabaseURL = %q, %v; want the flag's", c.DatabaseURL, err)
				}
			},
		},
		{
			name: "jwt key file and public url",
			args: []string{"--public-url", "https://ota.example.com/"},
			env:  map[string]string{"OTAD_JWT_KEY_FILE": "/secrets/jwt.key", "OTAD_LOG_LEVEL": "DEBUG", "OTAD_ADDR_FILE": "/tmp/a", "OTAD_TRUST_PROXY": "1"},
			check: func(t *testing.T, c *config) {
				if c.JWTKeyFile != "/secrets/jwt.key" || c.PublicURL != "https://ota.example.com" ||
					c.LogLevel != "debug" || c.AddrFile != "/tmp/a" || !c.TrustProxy {
					t.Errorf("config = %+v", *c)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := parseServeFlags(t, tt.args...)
			c, err := loadConfig(cmd.Flags(), mapEnv(tt.env))
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := writeFile(t, dir, "unknown.yaml", "addr: :1\nlisten: :2\nmax_upload_size: 1\n")
	broken := writeFile(t, dir, "broken.yaml", "addr: [\n")
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr []string
	}{
		{"unknown file keys", []string{"--config", unknown}, nil, []string{"unknown keys listen, max_upload_size"}},
		{"broken yaml", []string{"--config", broken}, nil, []string{"read config file", "broken.yaml"}},
		{"missing file", []string{"--config", filepath.Join(dir, "nope.yaml")}, nil, []string{"nope.yaml"}},
		{"bad size", []string{"--max-upload-size", "12 parsecs"}, nil, []string{"max-upload-size", "12 parsecs"}},
		{"bad ttl env", nil, map[string]string{"OTAD_TOKEN_TTL": "forever"}, []string{"token-ttl", "forever"}},
		{"tiny ttl", []string{"--token-ttl", "5s"}, nil, []string{"shorter than a minute"}},
		{"bad level", []string{"--log-level", "loud"}, nil, []string{"log-level", "loud"}},
		{"bad format", nil, map[string]string{"OTAD_LOG_FORMAT": "xml"}, []string{"log-format", "xml"}},
		{"bad bool", nil, map[string]string{"OTAD_TRUST_PROXY": "sometimes"}, []string{"trust-proxy", "sometimes"}},
		{"not a postgres url", nil, map[string]string{"OTAD_DATABASE_URL": "mysql://u:hunter2@db/otad"}, []string{"database-url", "postgres://", "xxxxx"}},
		{"bad dashboard", nil, map[string]string{"OTAD_DASHBOARD": "maybe"}, []string{"dashboard", "maybe"}},
		{"every problem at once", []string{"--log-level", "loud", "--max-upload-size", "0"}, nil, []string{"log-level", "more than zero"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := parseServeFlags(t, tt.args...)
			c, err := loadConfig(cmd.Flags(), mapEnv(tt.env))
			if err == nil {
				t.Fatalf("loadConfig = %+v, want an error", *c)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"1", 1},
		{"536870912", 512 << 20},
		{"512MiB", 512 << 20},
		{"512 mib", 512 << 20},
		{"200MB", 200_000_000},
		{"1GiB", 1 << 30},
		{"1gb", 1_000_000_000},
		{"1.5GiB", 3 << 29},
		{"10KB", 10_000},
		{"64KiB", 64 << 10},
		{"2TiB", 2 << 40},
		{" 7B ", 7},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "MB", "-1", "0", "0.1B", "1.2.3MB", "12 parsecs", "1e3", "9223372036854775808", "9000000TiB", "99999999999999999999.5GiB"} {
		if got, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", bad, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for in, want := range map[int64]string{512 << 20: "512MiB", 1 << 30: "1GiB", 1000: "1000", 3 << 10: "3KiB", 1: "1"} {
		if got := formatSize(in); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", in, got, want)
		}
		if back, err := parseSize(formatSize(in)); err != nil || back != in {
			t.Errorf("parseSize(formatSize(%d)) = %d, %v", in, back, err)
		}
	}
}

// FuzzParseSize checks that any accepted size is positive and that
// formatting it reads back the same.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512MiB", "200MB", "1.5GiB", "1", "0", "", "1e9", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			return
		}
		if n <= 0 {
			t.Fatalf("parseSize(%q) = %d, want > 0", s, n)
		}
		if back, err := parseSize(formatSize(n)); err != nil || back != n {
			t.Fatalf("parseSize(formatSize(%d)) = %d, %v", n, back, err)
		}
	})
}

// TestLoadConfigStorage: the bucket and download settings from flags,
// environment and file, with their errors.
func TestLoadConfigStorage(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "otad.yaml", `
blob-url: s3://file-bucket/otad/blobs
s3-endpoint: http://127.0.0.1:9000/
s3-region: eu-west-1
s3-path-style: true
download-base-url: https://cdn.example.com/ota/
presign-ttl: 30m
`)
	ok := []struct {
		name string
		args []string
		env  map[string]string
		want func(c *config) bool
	}{
		{"unset is the local directory", nil, nil, func(c *config) bool {
			return c.BlobURL == "" && c.S3Bucket == "" && c.DownloadBaseURL == "" && c.PresignTTL == time.Hour && !c.PresignTTLSet
		}},
		{"file", []string{"--config", file}, nil, func(c *config) bool {
			return c.S3Bucket == "file-bucket" && c.S3Prefix == "otad/blobs" && c.S3Endpoint == "http://127.0.0.1:9000" &&
				c.S3Region == "eu-west-1" && c.S3PathStyle && c.DownloadBaseURL == "https://cdn.example.com/ota" &&
				c.PresignTTL == 30*time.Minute && c.PresignTTLSet
		}},
		{"environment", nil, map[string]string{"OTAD_BLOB_URL": "s3://env-bucket", "OTAD_S3_PATH_STYLE": "1", "OTAD_PRESIGN_TTL": "2h"}, func(c *config) bool {
			return c.S3Bucket == "env-bucket" && c.S3Prefix == "" && c.S3PathStyle && c.PresignTTL == 2*time.Hour && c.PresignTTLSet
		}},
		{"flags beat the file", []string{"--config", file, "--blob-url", "s3://flag-bucket/p", "--s3-path-style=false", "--presign-ttl", "10m"}, nil, func(c *config) bool {
			return c.S3Bucket == "flag-bucket" && c.S3Prefix == "p" && !c.S3PathStyle && c.PresignTTL == 10*time.Minute && c.S3Region == "eu-west-1"
		}},
		{"a CDN in front of the local directory", []string{"--download-base-url", "https://cdn.example.com"}, nil, func(c *config) bool {
			return c.BlobURL == "" && c.DownloadBaseURL == "https://cdn.example.com"
		}},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(parseServeFlags(t, tt.args...).Flags(), mapEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c) {
				t.Errorf("config = %+v", *c)
			}
		})
	}
	bad := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"not s3", []string{"--blob-url", "gs://bucket"}, nil, "blob-url"},
		{"bad bucket", nil, map[string]string{"OTAD_BLOB_URL": "s3://UPPER"}, "blob-url"},
		{"credentials in the URL", []string{"--blob-url", "s3://AKID:topsecret@bucket"}, nil, "no credentials"},
		{"endpoint not a URL", []string{"--blob-url", "s3://bucket", "--s3-endpoint", "127.0.0.1:9000"}, nil, "s3-endpoint"},
		{"endpoint with a path", []string{"--blob-url", "s3://bucket", "--s3-endpoint", "http://h:9000/bucket"}, nil, "no path"},
		{"path style not a bool", nil, map[string]string{"OTAD_S3_PATH_STYLE": "maybe"}, "s3-path-style"},
		{"base not absolute", []string{"--download-base-url", "cdn.example.com/ota"}, nil, "download-base-url"},
		{"base with a query", []string{"--download-base-url", "https://cdn.example.com/?a=1"}, nil, "no query"},
		{"ttl not a duration", nil, map[string]string{"OTAD_PRESIGN_TTL": "a while"}, "presign-ttl"},
		{"ttl too short", []string{"--presign-ttl", "30s"}, nil, "presign-ttl"},
		{"ttl too long", []string{"--presign-ttl", "169h"}, nil, "168h"},
	}
	// otad serve refuses S3 settings without a bucket; other commands (a
	// migration to a bucket) may need them.
	for _, env := range []map[string]string{{"OTAD_S3_ENDPOINT": "http://127.0.0.1:9000"}, {"OTAD_S3_REGION": "eu-west-1"}} {
		c, err := loadConfig(parseServeFlags(t).Flags(), mapEnv(env))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.checkS3WithoutBucket(); err == nil || !strings.Contains(err.Error(), "set blob-url") {
			t.Errorf("%v without a bucket: %v", env, err)
		}
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(parseServeFlags(t, tt.args...).Flags(), mapEnv(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Errorf("error %q repeats a secret", err)
			}
		})
	}
}

func TestHostileDefaultsConfig(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantPrefix  int
		wantPrivate bool
		wantErr     string
	}{
		{"defaults", nil, nil, 64, false, ""},
		{"flags", []string{"--rate-limit-ipv6-prefix", "56", "--webhook-allow-private"}, nil, 56, true, ""},
		{"environment", nil, map[string]string{"OTAD_RATE_LIMIT_IPV6_PREFIX": "128", "OTAD_WEBHOOK_ALLOW_PRIVATE": "true"}, 128, true, ""},
		{"prefix too short", []string{"--rate-limit-ipv6-prefix", "16"}, nil, 0, false, "from 32 to 128"},
		{"prefix not a number", nil, map[string]string{"OTAD_RATE_LIMIT_IPV6_PREFIX": "/64"}, 0, false, "from 32 to 128"},
		{"private not a boolean", nil, map[string]string{"OTAD_WEBHOOK_ALLOW_PRIVATE": "sometimes"}, 0, false, "want true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(parseServeFlags(t, tt.args...).Flags(), mapEnv(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.IPv6Prefix != tt.wantPrefix || c.WebhookAllowPrivate != tt.wantPrivate {
				t.Errorf("IPv6Prefix %d, WebhookAllowPrivate %v; want %d, %v", c.IPv6Prefix, c.WebhookAllowPrivate, tt.wantPrefix, tt.wantPrivate)
			}
		})
	}
}
