package s3

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Scheme is the URL scheme of a bucket location, s3://BUCKET/PREFIX.
const Scheme = "s3"

// ParseURL splits s3://BUCKET/PREFIX into the bucket and the prefix. The
// prefix comes back without leading or trailing slash ("" for the bucket's
// root); empty segments, "." and ".." are refused, since a CDN or a person
// reading the bucket would resolve them differently from S3.
func ParseURL(raw string) (bucket, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("blob URL %q: %w", raw, err)
	}
	if u.Scheme != Scheme {
		return "", "", fmt.Errorf("blob URL %q: want s3://BUCKET or s3://BUCKET/PREFIX", raw)
	}
	if u.User != nil {
		// Not quoted back: the point is to keep the secret out of logs.
		return "", "", errors.New("blob URL: put no credentials in it; they come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", "", fmt.Errorf("blob URL %q: want s3://BUCKET/PREFIX, with no query or fragment", raw)
	}
	bucket = u.Host
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		return "", "", fmt.Errorf("blob URL %q: bucket %q: %v", raw, bucket, err)
	}
	p := strings.TrimSuffix(strings.TrimPrefix(u.Path, "/"), "/")
	if p == "" {
		return bucket, "", nil
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", "", fmt.Errorf("blob URL %q: prefix %q has an empty, . or .. segment", raw, p)
		}
	}
	if path.Clean(p) != p {
		return "", "", fmt.Errorf("blob URL %q: prefix %q is not clean", raw, p)
	}
	if err := s3utils.CheckValidObjectNamePrefix(p); err != nil {
		return "", "", fmt.Errorf("blob URL %q: prefix %q: %v", raw, p, err)
	}
	return bucket, p, nil
}

// Secret is a credential. It never prints: every fmt verb, slog and
// encoding/json show [redacted], so a configuration dumped into a log or
// an error message cannot carry it.
type Secret string

const redacted = "[redacted]"

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer (%#v).
func (Secret) GoString() string { return redacted }

// Format implements fmt.Formatter, so %x or %q cannot reveal it either.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML).
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Reveal returns the credential itself, for signing requests only.
func (s Secret) Reveal() string { return string(s) }

// Credentials are the keys requests are signed with.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey Secret
	SessionToken    Secret
	// Source says where they came from, for messages: "environment" or
	// the credentials file and profile.
	Source string
}

// LogValue implements slog.LogValuer: where the keys came from, never the
// keys.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.Source) }

// CredentialsFromEnv finds the keys the way the AWS tools do, reading the
// environment through getenv: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
// (with AWS_SESSION_TOKEN for temporary keys), else the profile
// AWS_PROFILE (default "default") of the shared credentials file
// AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials).
func CredentialsFromEnv(getenv func(string) string) (Credentials, error) {
	id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	switch {
	case id != "" && secret != "":
		return Credentials{
			AccessKeyID: id, SecretAccessKey: Secret(secret), SessionToken: Secret(getenv("AWS_SESSION_TOKEN")),
			Source: "environment (AWS_ACCESS_KEY_ID)",
		}, nil
	case id != "" || secret != "":
		return Credentials{}, errors.New("S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together; set both, or neither to use the credentials file")
	}
	file := getenv("AWS_SHARED_CREDENTIALS_FILE")
	if file == "" {
		home := getenv("HOME")
		if home == "" {
			return Credentials{}, errors.New("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE (HOME is unset, so ~/.aws/credentials cannot be found)")
		}
		file = filepath.Join(home, ".aws", "credentials")
	}
	profile := getenv("AWS_PROFILE")
	if profile == "" {
		profile = "default"
	}
	// A file provider makes no request, so the default context serves.
	v, err := credentials.NewFileAWSCredentials(file, profile).GetWithContext(nil)
	if err != nil || v.AccessKeyID == "" || v.SecretAccessKey == "" {
		// The library's message may quote the file's lines; say what to
		// fix without it.
		return Credentials{}, fmt.Errorf("no S3 credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are unset and profile %q of %s has no aws_access_key_id and aws_secret_access_key (set AWS_PROFILE or AWS_SHARED_CREDENTIALS_FILE to use another)", profile, file)
	}
	return Credentials{
		AccessKeyID: v.AccessKeyID, SecretAccessKey: Secret(v.SecretAccessKey), SessionToken: Secret(v.SessionToken),
		Source: fmt.Sprintf("file %s (profile %s)", file, profile),
	}, nil
}
