// Package testengine hands tests the real engines that .ci/run starts: a
// PostgreSQL server, an S3-compatible object store and Chromium. Each call
// gives the test a fresh, empty place of its own (a database, a bucket), so
// packages and tests never see each other's data.
//
// The engines are found through environment variables written by
// `bash .ci/engines.sh start` (source the file it names). When one is not
// configured, the test is skipped with a message saying how to run it;
// under CI=true it fails instead, so CI can never pass by skipping.
//
// Only tests import this package.
package testengine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables naming the engines.
const (
	EnvPostgres  = "OTA_TEST_POSTGRES_URL"
	EnvS3        = "OTA_TEST_S3_ENDPOINT"
	EnvS3Access  = "OTA_TEST_S3_ACCESS_KEY"
	EnvS3Secret  = "OTA_TEST_S3_SECRET_KEY"
	EnvChromium  = "OTA_TEST_CHROMIUM"
	howToEngines = "start the engines with `bash .ci/engines.sh start` and `source /tmp/ota-engines/env`"
)

// Missing skips t because the engine named is not configured, or fails it
// when CI=true.
func Missing(t testing.TB, engine, env string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not configured (%s is unset): %s", engine, env, howToEngines)
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", msg)
	}
	t.Skip(msg)
}

func suffix() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// PostgresAdminURL returns the URL of the maintenance database the test
// engine serves, for tests that manage databases themselves.
func PostgresAdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvPostgres)
	if u == "" {
		Missing(t, "PostgreSQL", EnvPostgres)
	}
	return u
}

// Postgres creates an empty database for the test and returns its URL. The
// database is dropped when the test ends, whatever connections are left.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := PostgresAdminURL(t)
	name := "ota_test_" + suffix()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		failEngine(t, "PostgreSQL", fmt.Errorf("connect %s: %w", redact(admin), err))
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	u.Path = "/" + name
	return u.String()
}

// S3Target is an empty bucket on the S3-compatible test server.
type S3Target struct {
	Endpoint  string // full URL, http://127.0.0.1:P
	Region    string
	Bucket    string
	AccessKey string
	SecretKey string
}

// Client returns a minio client for the target, for tests that look at the
// bucket directly.
func (s S3Target) Client(t testing.TB) *minio.Client {
	t.Helper()
	u, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvS3, err)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: u.Scheme == "https",
		Region: s.Region,
	})
	if err != nil {
		t.Fatalf("s3 client: %v", err)
	}
	return c
}

// S3 creates an empty bucket for the test; it is emptied and removed when
// the test ends.
func S3(t testing.TB) S3Target {
	t.Helper()
	ep := os.Getenv(EnvS3)
	if ep == "" {
		Missing(t, "the S3-compatible server", EnvS3)
	}
	target := S3Target{
		Endpoint:  ep,
		Region:    "us-east-1",
		Bucket:    "ota-test-" + suffix(),
		AccessKey: os.Getenv(EnvS3Access),
		SecretKey: os.Getenv(EnvS3Secret),
	}
	c := target.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.MakeBucket(ctx, target.Bucket, minio.MakeBucketOptions{Region: target.Region}); err != nil {
		failEngine(t, "the S3-compatible server", fmt.Errorf("create bucket at %s: %w", ep, err))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for obj := range c.ListObjects(ctx, target.Bucket, minio.ListObjectsOptions{Recursive: true}) {
			if obj.Err != nil {
				break
			}
			_ = c.RemoveObject(ctx, target.Bucket, obj.Key, minio.RemoveObjectOptions{})
		}
		for up := range c.ListIncompleteUploads(ctx, target.Bucket, "", true) {
			if up.Err != nil {
				break
			}
			_ = c.RemoveIncompleteUpload(ctx, target.Bucket, up.Key)
		}
		if err := c.RemoveBucket(ctx, target.Bucket); err != nil {
			t.Logf("remove test bucket %s: %v", target.Bucket, err)
		}
	})
	return target
}

// Chromium returns the path of the Chromium binary for browser tests.
func Chromium(t testing.TB) string {
	t.Helper()
	p := os.Getenv(EnvChromium)
	if p == "" {
		for _, c := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
		Missing(t, "Chromium", EnvChromium)
	}
	return p
}

// failEngine reports an engine that is configured but does not answer: a
// failure everywhere, since a configured engine that is down is a broken
// setup, not a missing one.
func failEngine(t testing.TB, engine string, err error) {
	t.Helper()
	t.Fatalf("%s is configured but does not answer: %v (restart it with `bash .ci/engines.sh start`)", engine, err)
}

// redact drops the password of a URL, for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the configured URL"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return strings.TrimSpace(u.String())
}
