// Package s3 is a blob.Store in a bucket of an S3-compatible object store
// (AWS S3, MinIO, VersityGW, Ceph, R2, …), for otad replicas that share
// their bundles and for downloads served by the bucket or a CDN in front
// of it instead of by otad.
//
// Layout under the configured prefix, the same as the local directory's:
//
//	PREFIX/sha256/ab/ab12…(64 hex)   complete, verified blobs
//	PREFIX/tmp/…                     uploads in progress
//
// Put streams to a temporary key while hashing (one PUT for a small blob,
// a multipart upload with a few fixed part buffers for a large one), and
// only once the whole stream is stored and its SHA-256 known copies it,
// server-side, to its content address. A failed or cancelled Put removes
// its temporary object and aborts its multipart upload; an otad killed
// mid-upload leaves them behind for Sweep. So nothing partial or
// unverified is ever visible under a content address.
package s3

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/otaship/ota/internal/blob"
)

// Defaults of the upload pipeline. A Put holds at most Concurrency+1 part
// buffers (one filling while the others upload), and all Puts together at
// most MaxBuffers: 24 MiB for one upload of any size, 64 MiB however many
// run at once.
const (
	DefaultPartSize    = 8 << 20
	DefaultConcurrency = 2
	DefaultMaxBuffers  = 8
	// minPartSize is S3's smallest part but the last; maxParts its
	// largest part count.
	minPartSize = 5 << 20
	maxParts    = 10000
	// maxCopy is the largest object one CopyObject may copy; larger ones
	// are copied part by part.
	maxCopy = 5 << 30
	// cleanupTimeout bounds the removal of an aborted upload's leftovers,
	// which runs after the request's own context has ended.
	cleanupTimeout = 30 * time.Second
	// objectCacheControl lets a CDN and devices keep a blob forever: its
	// key is its content.
	objectCacheControl = "public, max-age=31536000, immutable"
)

// Config says which bucket to use and how to reach it.
type Config struct {
	Bucket string
	// Prefix is the folder of the bucket otad owns, without slashes at
	// either end; "" is the bucket's root. ParseURL gives both.
	Prefix string
	// Endpoint is the server's full URL, http://127.0.0.1:9000; "" is AWS.
	// It may have no path: S3 APIs live at the root.
	Endpoint string
	// Region is the bucket's region; "" asks the server once at Open.
	Region string
	// PathStyle addresses the bucket as ENDPOINT/BUCKET instead of
	// BUCKET.ENDPOINT (MinIO, VersityGW and most self-hosted servers want
	// it); false lets the client choose (virtual-host style on AWS).
	PathStyle   bool
	Credentials Credentials

	// PartSize, Concurrency and MaxBuffers tune Put (0: the defaults).
	PartSize    int64
	Concurrency int
	MaxBuffers  int
	// Transport carries the requests (nil: a default transport).
	Transport http.RoundTripper
	// Now is the clock of temporary names and Sweep (nil: time.Now).
	Now func() time.Time
}

// LogValue implements slog.LogValuer: everything but the credentials,
// which are named by their source only.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("bucket", c.Bucket),
		slog.String("prefix", c.Prefix),
		slog.String("endpoint", c.endpointOrAWS()),
		slog.String("region", c.Region),
		slog.Bool("path_style", c.PathStyle),
		slog.String("credentials", c.Credentials.Source),
	)
}

func (c Config) endpointOrAWS() string {
	if c.Endpoint == "" {
		return "https://s3.amazonaws.com"
	}
	return c.Endpoint
}

// URL is the bucket location, s3://BUCKET/PREFIX.
func (c Config) URL() string {
	u := "s3://" + c.Bucket
	if c.Prefix != "" {
		u += "/" + c.Prefix
	}
	return u
}

// Store is a blob.Store in a bucket. It is safe for concurrent use, also
// by several processes on the same bucket: S3 writes are atomic per key.
type Store struct {
	cfg    Config
	client *minio.Client
	core   minio.Core
	prefix string // cfg.Prefix + "/", or ""
	bufs   *bufferPool
	locks  keyLocks
	now    func() time.Time
}

var _ blob.Store = (*Store)(nil)

// Open connects to the bucket and checks that it exists and the
// credentials may read it, so a wrong endpoint, bucket or key fails otad's
// start rather than the first upload.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("S3: no bucket configured")
	}
	if cfg.Credentials.AccessKeyID == "" || cfg.Credentials.SecretAccessKey == "" {
		return nil, errors.New("S3: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials")
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < minPartSize || cfg.PartSize > maxCopy {
		return nil, fmt.Errorf("S3: part size %d is outside S3's 5 MiB to 5 GiB", cfg.PartSize)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxBuffers <= 0 {
		cfg.MaxBuffers = DefaultMaxBuffers
	}
	cfg.MaxBuffers = max(cfg.MaxBuffers, 1)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	host, secure, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	tr := cfg.Transport
	if tr == nil {
		tr, err = minio.DefaultTransport(secure)
		if err != nil {
			return nil, fmt.Errorf("S3: transport: %w", err)
		}
	}
	cr := cfg.Credentials
	client, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(cr.AccessKeyID, cr.SecretAccessKey.Reveal(), cr.SessionToken.Reveal()),
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    tr,
		// A request that fails is failed to the caller after a few tries:
		// an upload that waits minutes for a dead endpoint helps no one.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 endpoint %s: %w", cfg.endpointOrAWS(), err)
	}
	s := &Store{
		cfg:    cfg,
		client: client,
		core:   minio.Core{Client: client},
		bufs:   newBufferPool(int(cfg.PartSize), cfg.MaxBuffers),
		now:    cfg.Now,
	}
	if cfg.Prefix != "" {
		s.prefix = cfg.Prefix + "/"
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// parseEndpoint turns the endpoint URL into minio's host and TLS flag.
func parseEndpoint(raw string) (host string, secure bool, err error) {
	if raw == "" {
		return "s3.amazonaws.com", true, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false, fmt.Errorf("S3 endpoint %q: want a full URL such as https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", false, fmt.Errorf("S3 endpoint %q: give only scheme, host and port; the bucket goes in the blob URL (s3://BUCKET/PREFIX)", raw)
	}
	return u.Host, u.Scheme == "https", nil
}

// check makes sure the bucket exists and is readable with these keys, and
// learns its region when none is configured (so presigning needs no
// request later).
func (s *Store) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	where := fmt.Sprintf("bucket %s at %s", s.cfg.Bucket, s.cfg.endpointOrAWS())
	if s.cfg.Region == "" {
		region, err := s.client.GetBucketLocation(ctx, s.cfg.Bucket)
		if err != nil {
			return explain(where, err)
		}
		s.cfg.Region = region
	}
	// Listing one key proves the bucket exists and that these keys may
	// list it, which List and garbage collection need. (HEAD bucket says
	// less: some servers answer 404 to keys they do not know.)
	opts := minio.ListObjectsOptions{Prefix: s.prefix + "sha256/", MaxKeys: 1}
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	// Only the first answer matters: an error, an object or nothing.
	if obj, ok := <-s.client.ListObjects(lctx, s.cfg.Bucket, opts); ok && obj.Err != nil {
		return explain(where, obj.Err)
	}
	return nil
}

// explain turns a client error at start into what to fix.
func explain(where string, err error) error {
	r := minio.ToErrorResponse(err)
	switch r.Code {
	case "NoSuchBucket":
		return fmt.Errorf("S3: %s does not exist; create it (aws s3 mb) or fix --blob-url: %w", where, err)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
		"XAdminUserNotFound": // VersityGW's InvalidAccessKeyId
		return fmt.Errorf("S3: %s refuses these credentials (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the credentials file, and the bucket policy): %w", where, err)
	case "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException":
		return fmt.Errorf("S3: %s is in another region; set --s3-region: %w", where, err)
	}
	if r.StatusCode == http.StatusForbidden || r.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("S3: %s refuses these credentials (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the credentials file, and the bucket policy): %w", where, err)
	}
	if r.StatusCode != 0 {
		return fmt.Errorf("S3: %s answers %d %s: %w", where, r.StatusCode, r.Code, err)
	}
	return fmt.Errorf("S3: cannot reach %s (check --s3-endpoint and that the server runs): %w", where, err)
}

// Config returns the configuration in use, with the region filled in.
func (s *Store) Config() Config { return s.cfg }

// ObjectKey is the bucket key of blob key: PREFIX/sha256/ab/<key>.
func (s *Store) ObjectKey(key string) string { return s.prefix + ObjectPath(key) }

// ObjectPath is the key's place below the prefix, sha256/ab/<key>: what
// a CDN whose origin is the bucket's prefix sees (download.Bucket).
func (s *Store) ObjectPath(key string) string { return ObjectPath(key) }

// ObjectPath is the key's place below any prefix: sha256/ab/<key>.
func ObjectPath(key string) string { return "sha256/" + key[:2] + "/" + key }

// tmpKey names a new upload: the time first, so a listing shows the
// oldest first, and random bits, so replicas never collide.
func (s *Store) tmpKey() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return s.prefix + "tmp/" + strconv.FormatInt(s.now().UnixNano(), 36) + "-" + hex.EncodeToString(b[:])
}

// validKey reports whether k is 64 lowercase hex digits. Every bucket key
// the store builds from a caller's key goes through it.
func validKey(k string) bool {
	if len(k) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isNotFound(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NotFound":
		return true
	}
	return false
}

// Open implements blob.Store. The Content is a *minio.Object: reads
// stream one GET, and Seek or ReadAt start a ranged one, so a Range
// request costs only the bytes it asks for.
func (s *Store) Open(ctx context.Context, key string) (blob.Content, blob.Info, error) {
	if !validKey(key) {
		return nil, blob.Info{}, blob.ErrNotFound
	}
	obj, err := s.client.GetObject(ctx, s.cfg.Bucket, s.ObjectKey(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, blob.Info{}, fmt.Errorf("open blob %s: %w", key, err)
	}
	st, err := obj.Stat()
	if err != nil {
		_ = obj.Close()
		if isNotFound(err) {
			return nil, blob.Info{}, blob.ErrNotFound
		}
		return nil, blob.Info{}, fmt.Errorf("open blob %s: %w", key, err)
	}
	return obj, blob.Info{SHA256: key, Size: st.Size, ModTime: st.LastModified}, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	if !validKey(key) {
		return blob.Info{}, blob.ErrNotFound
	}
	st, err := s.client.StatObject(ctx, s.cfg.Bucket, s.ObjectKey(key), minio.StatObjectOptions{})
	if err != nil {
		if isNotFound(err) {
			return blob.Info{}, blob.ErrNotFound
		}
		return blob.Info{}, fmt.Errorf("stat blob %s: %w", key, err)
	}
	return blob.Info{SHA256: key, Size: st.Size, ModTime: st.LastModified}, nil
}

// Delete implements blob.Store. A key that is not 64 lowercase hex digits
// names no blob, so deleting it is a no-op like any missing blob.
func (s *Store) Delete(ctx context.Context, key string) error {
	if !validKey(key) {
		return nil
	}
	unlock := s.locks.lock(key)
	defer unlock()
	if err := s.client.RemoveObject(ctx, s.cfg.Bucket, s.ObjectKey(key), minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

// List implements blob.Store. Blobs come in key order (S3 lists in
// lexical order); objects that are not blobs (other names, a name in the
// wrong shard) are skipped.
func (s *Store) List(ctx context.Context, fn func(blob.Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn fails
	root := s.prefix + "sha256/"
	for obj := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: root, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("list blobs: %w", obj.Err)
		}
		rest := strings.TrimPrefix(obj.Key, root)
		shard, name, ok := strings.Cut(rest, "/")
		if !ok || !validKey(name) || shard != name[:2] {
			continue
		}
		if err := fn(blob.Info{SHA256: name, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	return nil
}

// Presign returns a URL that lets anyone GET blob key for ttl, served as
// a file called name (Content-Disposition) of the type its extension says.
// It needs no request: the region is known since Open.
func (s *Store) Presign(ctx context.Context, key, name string, ttl time.Duration) (string, error) {
	if !validKey(key) {
		return "", blob.ErrNotFound
	}
	params := url.Values{}
	if name != "" {
		params.Set("response-content-disposition", `attachment; filename="`+name+`"`)
		if ct := contentType(name); ct != "" {
			params.Set("response-content-type", ct)
		}
	}
	u, err := s.client.PresignedGetObject(ctx, s.cfg.Bucket, s.ObjectKey(key), ttl, params)
	if err != nil {
		return "", fmt.Errorf("presign blob %s: %w", key, err)
	}
	return u.String(), nil
}

// contentType is the type a download of name is served with.
func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".zip"):
		return "application/zip"
	case strings.HasSuffix(name, ".apk"):
		return "application/vnd.android.package-archive"
	}
	return ""
}

// Sweep removes what interrupted uploads left: temporary objects and
// incomplete multipart uploads older than olderThan. A Put cleans up after
// itself when it fails; only a process killed mid-upload leaves these, and
// other replicas may be uploading right now, so the age keeps theirs.
func (s *Store) Sweep(ctx context.Context, olderThan time.Duration) (removed int, err error) {
	cutoff := s.now().Add(-olderThan)
	tmp := s.prefix + "tmp/"
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range s.client.ListObjects(lctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: tmp, Recursive: true}) {
		if obj.Err != nil {
			return removed, fmt.Errorf("sweep temporary objects: %w", obj.Err)
		}
		if !obj.LastModified.Before(cutoff) {
			continue
		}
		if err := s.client.RemoveObject(ctx, s.cfg.Bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
			return removed, fmt.Errorf("sweep temporary object %s: %w", obj.Key, err)
		}
		removed++
	}
	keyMarker, idMarker := "", ""
	for {
		res, err := s.core.ListMultipartUploads(ctx, s.cfg.Bucket, tmp, keyMarker, idMarker, "", 1000)
		if err != nil {
			return removed, fmt.Errorf("sweep incomplete uploads: %w", err)
		}
		for _, up := range res.Uploads {
			if !strings.HasPrefix(up.Key, tmp) || !up.Initiated.Before(cutoff) {
				continue
			}
			if err := s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, up.Key, up.UploadID); err != nil && minio.ToErrorResponse(err).Code != "NoSuchUpload" {
				return removed, fmt.Errorf("sweep incomplete upload %s: %w", up.Key, err)
			}
			removed++
		}
		if !res.IsTruncated || (res.NextKeyMarker == keyMarker && res.NextUploadIDMarker == idMarker) {
			return removed, nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}

// keyLocks serialises, per blob key, this process's "is it stored? then
// copy" of Put and its Delete, so Info.New is reported once per content
// and a Delete cannot slip between the two.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

func (l *keyLocks) lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*keyLock{}
	}
	k := l.m[key]
	if k == nil {
		k = &keyLock{}
		l.m[key] = k
	}
	k.refs++
	l.mu.Unlock()
	k.mu.Lock()
	return func() {
		k.mu.Unlock()
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}
