package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/blob/blobtest"
	"github.com/otaship/ota/internal/blob/s3"
	"github.com/otaship/ota/internal/testengine"
)

// config is the store configuration of a fresh test bucket.
func config(target testengine.S3Target, prefix string) s3.Config {
	return s3.Config{
		Bucket:    target.Bucket,
		Prefix:    prefix,
		Endpoint:  target.Endpoint,
		Region:    target.Region,
		PathStyle: true,
		Credentials: s3.Credentials{
			AccessKeyID:     target.AccessKey,
			SecretAccessKey: s3.Secret(target.SecretKey),
			Source:          "test",
		},
	}
}

// newStore opens a store on a fresh bucket, under a prefix so that the
// tests see the store keep to it.
func newStore(t testing.TB, tune func(*s3.Config)) (*s3.Store, testengine.S3Target) {
	t.Helper()
	target := testengine.S3(t)
	cfg := config(target, "otad/blobs")
	if tune != nil {
		tune(&cfg)
	}
	s, err := s3.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, target
}

func TestS3Conformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, _ := newStore(t, nil)
		return s
	})
}

// objects lists every key in the bucket and every incomplete upload.
func objects(t *testing.T, target testengine.S3Target) (keys, uploads []string) {
	t.Helper()
	c := target.Client(t)
	for obj := range c.ListObjects(t.Context(), target.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list: %v", obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	core := minio.Core{Client: c}
	res, err := core.ListMultipartUploads(t.Context(), target.Bucket, "", "", "", "", 1000)
	if err != nil {
		t.Fatalf("list uploads: %v", err)
	}
	for _, u := range res.Uploads {
		uploads = append(uploads, u.Key)
	}
	return keys, uploads
}

func TestLayout(t *testing.T) {
	s, target := newStore(t, nil)
	data := blobtest.Data(1, 1000)
	info, err := s.Put(t.Context(), bytes.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := "otad/blobs/sha256/" + info.SHA256[:2] + "/" + info.SHA256
	if got := s.ObjectKey(info.SHA256); got != want {
		t.Errorf("ObjectKey = %q, want %q", got, want)
	}
	keys, uploads := objects(t, target)
	if len(keys) != 1 || keys[0] != want || len(uploads) != 0 {
		t.Fatalf("bucket holds %v and uploads %v; want only %s", keys, uploads, want)
	}
	st, err := target.Client(t).StatObject(t.Context(), target.Bucket, want, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cc := st.Metadata.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("Cache-Control of a stored blob = %q, want it immutable for a CDN", cc)
	}
	// Objects that are not blobs, in and around the store's folder, are
	// not listed.
	c := target.Client(t)
	for _, k := range []string{
		"otad/blobs/sha256/README",
		"otad/blobs/sha256/00/" + info.SHA256, // the wrong shard
		"otad/other/sha256/" + info.SHA256[:2] + "/" + strings.Repeat("a", 64),
		"sha256/" + info.SHA256[:2] + "/" + strings.Repeat("b", 64),
	} {
		if _, err := c.PutObject(t.Context(), target.Bucket, k, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var listed []string
	if err := s.List(t.Context(), func(i blob.Info) error { listed = append(listed, i.SHA256); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0] != info.SHA256 {
		t.Errorf("List = %v, want only %s", listed, info.SHA256)
	}
}

// errKeptReading is what a cutReader without an error of its own fails
// with once cut: a Put that does not stop at its cancellation or limit
// fails with it instead of reading forever.
var errKeptReading = errors.New("read past the cut")

// cutReader yields n bytes and then calls cut once, like a client that
// goes away mid-upload; after that it fails with err (nil:
// errKeptReading).
type cutReader struct {
	r   io.Reader
	n   int64
	cut func()
	err error
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		if c.cut != nil {
			c.cut()
			c.cut = nil
			return 0, nil // the next Read sees the cancellation
		}
		if c.err != nil {
			return 0, c.err
		}
		return 0, errKeptReading
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// zeros is an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestAbortedUploadsLeaveNothing fails uploads in each way a request can
// fail, in the first part and after several parts went up: the bucket
// keeps no object and no incomplete multipart upload.
func TestAbortedUploadsLeaveNothing(t *testing.T) {
	const part = 5 << 20
	tests := []struct {
		name    string
		at      int64 // bytes read before the failure
		limit   int64
		cancel  bool
		readErr error
		want    error
	}{
		{"too large in the first part", 1 << 20, 1 << 20, false, nil, blob.ErrTooLarge},
		{"too large after parts", 3*part + 7, 3*part + 7, false, nil, blob.ErrTooLarge},
		{"client gone in the first part", 1 << 20, 0, false, io.ErrUnexpectedEOF, io.ErrUnexpectedEOF},
		{"client gone after parts", 2*part + 100, 0, false, io.ErrUnexpectedEOF, io.ErrUnexpectedEOF},
		{"cancelled in the first part", 1 << 20, 0, true, nil, context.Canceled},
		{"cancelled after parts", 2*part + 100, 0, true, nil, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, target := newStore(t, func(c *s3.Config) { c.PartSize = part })
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			r := &cutReader{r: zeros{}, n: tt.at, err: tt.readErr}
			if tt.cancel {
				r.cut = cancel
			}
			if tt.limit > 0 {
				r.n = 10 * part // the limit cuts it
			}
			_, err := s.Put(ctx, r, tt.limit)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Put error = %v, want %v", err, tt.want)
			}
			keys, uploads := objects(t, target)
			if len(keys) != 0 || len(uploads) != 0 {
				t.Errorf("after a failed Put the bucket holds %v and incomplete uploads %v; want nothing", keys, uploads)
			}
		})
	}
}

// TestMultipart stores blobs around the part size with small parts, and
// one with three parts in flight.
func TestMultipart(t *testing.T) {
	const part = 5 << 20
	s, target := newStore(t, func(c *s3.Config) { c.PartSize = part; c.Concurrency = 3; c.MaxBuffers = 2 })
	for i, size := range []int{part - 1, part, part + 1, 2 * part, 4*part + 12345} {
		data := blobtest.Data(uint64(20+i), size)
		info, err := s.Put(t.Context(), bytes.NewReader(data), 0)
		if err != nil {
			t.Fatalf("Put(%d bytes): %v", size, err)
		}
		if info.SHA256 != blobtest.Key(data) || info.Size != int64(size) || !info.New {
			t.Fatalf("Put(%d bytes) = %+v", size, info)
		}
		c, _, err := s.Open(t.Context(), info.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("blob of %d bytes reads back as %d bytes (%v)", size, len(got), err)
		}
	}
	keys, uploads := objects(t, target)
	if len(keys) != 5 || len(uploads) != 0 {
		t.Errorf("bucket holds %d objects %v and uploads %v; want the 5 blobs only", len(keys), keys, uploads)
	}
}

// TestPutReplacesDamagedObject: an object of the wrong size under a
// content address (written by something else) is replaced by a Put.
func TestPutReplacesDamagedObject(t *testing.T) {
	s, target := newStore(t, nil)
	data := blobtest.Data(3, 4096)
	key := blobtest.Key(data)
	if _, err := target.Client(t).PutObject(t.Context(), target.Bucket, s.ObjectKey(key), strings.NewReader("short"), 5, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := s.Put(t.Context(), bytes.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !info.New {
		t.Error("Put over a damaged object: New = false")
	}
	st, err := s.Stat(t.Context(), key)
	if err != nil || st.Size != int64(len(data)) {
		t.Errorf("Stat after repair = %+v, %v; want size %d", st, err, len(data))
	}
}

// TestSweep plays what kill -9 mid-upload leaves: a temporary object and
// an incomplete multipart upload. Young ones survive a sweep (another
// replica may be uploading them), old ones go; blobs are never touched.
func TestSweep(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	s, target := newStore(t, func(c *s3.Config) { c.Now = clock })
	kept, err := s.Put(t.Context(), strings.NewReader("a blob"), 0)
	if err != nil {
		t.Fatal(err)
	}
	c := target.Client(t)
	if _, err := c.PutObject(t.Context(), target.Bucket, "otad/blobs/tmp/killed", strings.NewReader("half"), 4, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	core := minio.Core{Client: c}
	if _, err := core.NewMultipartUpload(t.Context(), target.Bucket, "otad/blobs/tmp/killed-multipart", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	// Outside the store's folder: not ours to sweep.
	if _, err := core.NewMultipartUpload(t.Context(), target.Bucket, "elsewhere/tmp/x", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	n, err := s.Sweep(t.Context(), time.Hour)
	if err != nil || n != 0 {
		t.Fatalf("Sweep of young debris = %d, %v; want 0 removed", n, err)
	}
	now = now.Add(2 * time.Hour)
	n, err = s.Sweep(t.Context(), time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("Sweep of old debris = %d, %v; want 2 removed", n, err)
	}
	keys, uploads := objects(t, target)
	if len(keys) != 1 || keys[0] != s.ObjectKey(kept.SHA256) {
		t.Errorf("objects after Sweep = %v, want only the blob", keys)
	}
	if len(uploads) != 1 || uploads[0] != "elsewhere/tmp/x" {
		t.Errorf("incomplete uploads after Sweep = %v, want only the one outside the prefix", uploads)
	}
}

func TestPresign(t *testing.T) {
	s, _ := newStore(t, nil)
	data := blobtest.Data(4, 100000)
	info, err := s.Put(t.Context(), bytes.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Presign(t.Context(), info.SHA256, info.SHA256+".zip", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "X-Amz-Expires=3600") {
		t.Errorf("presigned URL %s does not say it lasts an hour", u)
	}
	get := func(rng string) (*http.Response, []byte) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	resp, body := get("")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET presigned URL: %d, %d bytes; want 200 and the blob", resp.StatusCode, len(body))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/zip" {
		t.Errorf("Content-Type = %q, want application/zip", ct)
	}
	// Devices resume with Range; the bucket must answer 206.
	resp, body = get("bytes=99000-")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[99000:]) {
		t.Errorf("ranged GET: %d, %d bytes; want 206 and the last 1000", resp.StatusCode, len(body))
	}
	if _, err := s.Presign(t.Context(), "../x", "x.zip", time.Hour); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Presign of an invalid key: %v, want ErrNotFound", err)
	}
}

// TestOpenErrors: a wrong endpoint, bucket or key fails Open with a
// message saying what to fix, and never with the secret in it.
func TestOpenErrors(t *testing.T) {
	target := testengine.S3(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	tests := []struct {
		name string
		edit func(*s3.Config)
		want string
	}{
		{"unreachable endpoint", func(c *s3.Config) { c.Endpoint = closed }, "cannot reach"},
		{"missing bucket", func(c *s3.Config) { c.Bucket = "ota-test-no-such-bucket" }, "does not exist"},
		{"wrong secret", func(c *s3.Config) { c.Credentials.SecretAccessKey = "wrong-secret-d41d8cd98f00b204" }, "refuses these credentials"},
		{"unknown key id", func(c *s3.Config) { c.Credentials.AccessKeyID = "nobody" }, "refuses these credentials"},
		{"no credentials", func(c *s3.Config) { c.Credentials = s3.Credentials{} }, "no credentials"},
		{"endpoint with a path", func(c *s3.Config) { c.Endpoint = target.Endpoint + "/bucket" }, "only scheme, host and port"},
		{"endpoint without scheme", func(c *s3.Config) { c.Endpoint = "127.0.0.1:9000" }, "full URL"},
		{"part too small", func(c *s3.Config) { c.PartSize = 1 << 20 }, "part size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(target, "")
			tt.edit(&cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			_, err := s3.Open(ctx, cfg)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open error %q does not say %q", err, tt.want)
			}
			for _, secret := range []string{target.SecretKey, cfg.Credentials.SecretAccessKey.Reveal()} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("Open error %q contains the secret", err)
				}
			}
		})
	}
}

// TestSecretsNeverPrint dumps a configuration every way otad might: fmt
// verbs, slog in both formats, JSON. The secret and the session token
// appear in none.
func TestSecretsNeverPrint(t *testing.T) {
	const secret, token = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLETOKEN"
	cfg := s3.Config{Bucket: "b", Prefix: "p", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1",
		Credentials: s3.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: secret, SessionToken: token, Source: "environment"}}
	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		fmt.Fprintf(&out, verb+"\n", cfg)
		fmt.Fprintf(&out, verb+"\n", cfg.Credentials)
		fmt.Fprintf(&out, verb+"\n", cfg.Credentials.SecretAccessKey)
		fmt.Fprintf(&out, verb+"\n", &cfg)
	}
	slog.New(slog.NewJSONHandler(&out, nil)).Info("config", "blob", cfg, "creds", cfg.Credentials, "raw", cfg.Credentials.SecretAccessKey)
	slog.New(slog.NewTextHandler(&out, nil)).Info("config", "blob", cfg, "creds", cfg.Credentials)
	for _, s := range []string{secret, token, fmt.Sprintf("%x", secret)} {
		if strings.Contains(out.String(), s) {
			t.Fatalf("a dump of the configuration contains a secret:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "eu-west-1") || !strings.Contains(out.String(), "[redacted]") {
		t.Errorf("dump lost the settings it should show:\n%s", out.String())
	}
	if cfg.Credentials.SecretAccessKey.Reveal() != secret {
		t.Error("Reveal does not give the secret back")
	}
}

func TestCredentialsFromEnv(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "credentials")
	if err := os.WriteFile(file, []byte(`[default]
aws_access_key_id = FILEDEFAULT
aws_secret_access_key = file-default-secret

[ci]
aws_access_key_id = FILECI
aws_secret_access_key = file-ci-secret
aws_session_token = file-ci-token
`), 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".aws", "credentials"), []byte("[default]\naws_access_key_id = HOMEKEY\naws_secret_access_key = home-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name              string
		env               map[string]string
		id, secret, token string
		wantErr           string
	}{
		{"environment", map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SESSION_TOKEN": "env-token", "AWS_SHARED_CREDENTIALS_FILE": file}, "ENVKEY", "env-secret", "env-token", ""},
		{"environment beats the file", map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "env-secret", "HOME": home}, "ENVKEY", "env-secret", "", ""},
		{"half the environment", map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY", "HOME": home}, "", "", "", "go together"},
		{"file, default profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file}, "FILEDEFAULT", "file-default-secret", "", ""},
		{"file, named profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "ci"}, "FILECI", "file-ci-secret", "file-ci-token", ""},
		{"home file", map[string]string{"HOME": home}, "HOMEKEY", "home-secret", "", ""},
		{"missing profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "nope"}, "", "", "", `profile "nope"`},
		{"missing file", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "absent")}, "", "", "", "no S3 credentials"},
		{"nothing at all", map[string]string{}, "", "", "", "HOME is unset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := s3.CredentialsFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one saying %q", err, tt.wantErr)
				}
				for _, s := range []string{"file-default-secret", "file-ci-secret", "home-secret"} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q contains a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.AccessKeyID != tt.id || c.SecretAccessKey.Reveal() != tt.secret || c.SessionToken.Reveal() != tt.token {
				t.Errorf("got %s/%s/%s, want %s/%s/%s", c.AccessKeyID, c.SecretAccessKey.Reveal(), c.SessionToken.Reveal(), tt.id, tt.secret, tt.token)
			}
			if c.Source == "" {
				t.Error("Source is empty")
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		in, bucket, prefix string
		wantErr            bool
	}{
		{"s3://bucket", "bucket", "", false},
		{"s3://bucket/", "bucket", "", false},
		{"s3://my-bucket.example/otad", "my-bucket.example", "otad", false},
		{"s3://bucket/a/b/c/", "bucket", "a/b/c", false},
		{"s3://bucket//a", "", "", true},
		{"s3://bucket/a//b", "", "", true},
		{"s3://bucket/a/../b", "", "", true},
		{"s3://bucket/./a", "", "", true},
		{"s3://Bucket", "", "", true},
		{"s3://b", "", "", true},
		{"s3://", "", "", true},
		{"s3://bucket/a?x=1", "", "", true},
		{"s3://bucket/a#f", "", "", true},
		{"s3://key:secret@bucket/a", "", "", true},
		{"http://bucket/a", "", "", true},
		{"bucket/a", "", "", true},
		{"s3:bucket", "", "", true},
		{"", "", "", true},
	}
	for _, tt := range tests {
		b, p, err := s3.ParseURL(tt.in)
		if (err != nil) != tt.wantErr || b != tt.bucket || p != tt.prefix {
			t.Errorf("ParseURL(%q) = %q, %q, %v; want %q, %q, error %v", tt.in, b, p, err, tt.bucket, tt.prefix, tt.wantErr)
		}
		if err != nil && strings.Contains(tt.in, "secret") && strings.Contains(err.Error(), "secret@") {
			t.Errorf("ParseURL error %q repeats the credentials", err)
		}
	}
}

// FuzzParseURL: whatever the URL, an accepted one gives a valid bucket
// and a prefix of clean, non-empty segments that round-trips.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://bucket", "s3://bucket/a/b", "s3://b/../x", "s3://bucket/%2e%2e/x", "s3://bucket/a%2Fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		b, p, err := s3.ParseURL(raw)
		if err != nil {
			return
		}
		if b == "" || strings.ContainsAny(b, "/?#@") {
			t.Fatalf("ParseURL(%q) bucket %q", raw, b)
		}
		if p != "" {
			for _, seg := range strings.Split(p, "/") {
				if seg == "" || seg == "." || seg == ".." {
					t.Fatalf("ParseURL(%q) prefix %q has segment %q", raw, p, seg)
				}
			}
		}
		cfg := s3.Config{Bucket: b, Prefix: p}
		b2, p2, err := s3.ParseURL(cfg.URL())
		if err != nil || b2 != b || p2 != p {
			t.Fatalf("ParseURL(%q) = %q %q; its URL %q parses as %q %q %v", raw, b, p, cfg.URL(), b2, p2, err)
		}
	})
}

// TestServerChecksBodySHA256 checks what Put relies on: the server refuses
// a body whose SHA-256 is not the one the signed request names, so a part
// damaged on the way never becomes part of an object.
func TestServerChecksBodySHA256(t *testing.T) {
	target := testengine.S3(t)
	core := minio.Core{Client: target.Client(t)}
	body := []byte("the bytes that were hashed")
	wrong := blobtest.Key([]byte("other bytes"))
	opts := minio.PutObjectOptions{DisableContentSha256: true}
	if _, err := core.PutObject(t.Context(), target.Bucket, "k", bytes.NewReader(body), int64(len(body)), "", wrong, opts); err == nil {
		t.Fatal("the S3 server stored a body whose SHA-256 differs from the signed one")
	}
	id, err := core.NewMultipartUpload(t.Context(), target.Bucket, "m", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer core.AbortMultipartUpload(context.Background(), target.Bucket, "m", id)
	if _, err := core.PutObjectPart(t.Context(), target.Bucket, "m", id, 1, bytes.NewReader(body), int64(len(body)),
		minio.PutObjectPartOptions{Sha256Hex: wrong, DisableContentSha256: true}); err == nil {
		t.Fatal("the S3 server took a part whose SHA-256 differs from the signed one")
	}
	if _, err := core.PutObject(t.Context(), target.Bucket, "k", bytes.NewReader(body), int64(len(body)), "", blobtest.Key(body), opts); err != nil {
		t.Fatalf("the right SHA-256 is refused: %v", err)
	}
}
