package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/blob/s3"
	downloads "github.com/otaship/ota/internal/download"
)

// openBlobs opens the bundle store the configuration names: the bucket of
// --blob-url, or the data dir's blob directory. bucket is the S3 store
// when it is one, for the download links.
func openBlobs(ctx context.Context, cfg *config, getenv func(string) string) (bl blob.Store, bucket *s3.Store, err error) {
	if cfg.BlobURL == "" {
		fs, err := blob.NewFS(cfg.BlobDir())
		if err != nil {
			return nil, nil, fmt.Errorf("open bundle directory: %w", err)
		}
		return fs, nil, nil
	}
	st, err := openBucket(ctx, cfg.BlobURL, cfg, getenv)
	if err != nil {
		return nil, nil, err
	}
	return st, st, nil
}

// openBucket opens the bucket at blobURL (s3://BUCKET/PREFIX) with the
// configuration's --s3-* settings and the credentials of the environment.
// It is also the way to a destination bucket of a migration
// (otad migrate --to-bucket).
func openBucket(ctx context.Context, blobURL string, cfg *config, getenv func(string) string) (*s3.Store, error) {
	bucket, prefix, err := s3.ParseURL(blobURL)
	if err != nil {
		return nil, err
	}
	creds, err := s3.CredentialsFromEnv(getenv)
	if err != nil {
		return nil, fmt.Errorf("bundles in %s: %w", blobURL, err)
	}
	st, err := s3.Open(ctx, s3.Config{
		Bucket:      bucket,
		Prefix:      prefix,
		Endpoint:    cfg.S3Endpoint,
		Region:      cfg.S3Region,
		PathStyle:   cfg.S3PathStyle,
		Credentials: creds,
	})
	if err != nil {
		return nil, fmt.Errorf("bundles in %s: %w", blobURL, err)
	}
	return st, nil
}

// newLocator makes the download links of the configuration, and says in
// the log where devices download from.
func newLocator(cfg *config, publicURL string, bucket *s3.Store, log *slog.Logger) (*downloads.Locator, error) {
	dc := downloads.Config{PublicURL: publicURL, BaseURL: cfg.DownloadBaseURL, TTL: cfg.PresignTTL, Log: log}
	if bucket != nil {
		dc.Bucket = bucket // not a typed nil: the local directory has no bucket
	}
	l, err := downloads.New(dc)
	if err != nil {
		return nil, err
	}
	if bucket != nil {
		log.Info("bundles in object storage", "blob_url", cfg.BlobURL, "s3", bucket.Config())
	}
	switch l.Mode() {
	case downloads.ModePresigned:
		log.Info("devices download bundles from presigned URLs of the bucket", "presign_ttl", l.TTL().String())
	case downloads.ModeCDN:
		log.Info("devices download bundles from the CDN", "download_base_url", cfg.DownloadBaseURL)
	}
	if cfg.PresignTTLSet && l.Mode() != downloads.ModePresigned {
		log.Warn("presign-ttl has no effect: presigned URLs are made only with --blob-url and no --download-base-url",
			"mode", l.Mode())
	}
	return l, nil
}

// refuseBucket stops otad backup and restore when bundles are in a bucket:
// both copy a local data dir's bundle files, and a backup without the
// bundles, or a restore beside the bucket, would look complete and not be.
func refuseBucket(cfg *config, what string) error {
	if cfg.BlobURL == "" {
		return nil
	}
	return fmt.Errorf("bundles are in %s, not in the data dir: otad %s handles a local data dir only. "+
		"Back the bucket up with its own tooling (versioning or replication, or aws s3 sync %s DIR) and see docs/operations.md", cfg.BlobURL, what, cfg.BlobURL)
}
