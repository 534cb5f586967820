package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/blob/blobtest"
	"github.com/otaship/ota/internal/blob/s3"
	"github.com/otaship/ota/internal/testengine"
)

func newS3(t *testing.T) *s3.Store {
	t.Helper()
	target := testengine.S3(t)
	st, err := s3.Open(t.Context(), s3.Config{
		Bucket: target.Bucket, Prefix: "otad", Endpoint: target.Endpoint, Region: target.Region, PathStyle: true,
		Credentials: s3.Credentials{AccessKeyID: target.AccessKey, SecretAccessKey: s3.Secret(target.SecretKey)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func listKeys(t *testing.T, s blob.Store) []string {
	t.Helper()
	var ks []string
	if err := s.List(t.Context(), func(i blob.Info) error { ks = append(ks, i.SHA256); return nil }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(ks)
	return ks
}

// TestCopyDirToBucketAndBack moves blobs from a local directory to a
// bucket and back, reruns, and copies into a destination that has some
// already: each time every blob arrives intact and nothing is copied
// twice.
func TestCopyDirToBucketAndBack(t *testing.T) {
	ctx := t.Context()
	fs := newFS(t)
	var want []string
	for i := range 6 {
		info, err := fs.Put(ctx, bytes.NewReader(blobtest.Data(uint64(40+i), i*50000)), 0)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, info.SHA256)
	}
	sort.Strings(want)
	bucket := newS3(t)
	// One is in the bucket already (a first run that stopped early).
	if _, err := bucket.Put(ctx, bytes.NewReader(blobtest.Data(43, 3*50000)), 0); err != nil {
		t.Fatal(err)
	}
	var calls int
	rep, err := blob.Copy(ctx, bucket, fs, blob.CopyOptions{Progress: func(p blob.CopyProgress) {
		calls++
		if p.Total != 6 || p.Done != calls {
			t.Errorf("progress %+v after %d calls", p, calls)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Blobs != 6 || rep.Copied != 5 || rep.Skipped != 1 || calls != 6 {
		t.Errorf("first copy = %+v (%d progress calls), want 5 copied, 1 skipped", rep, calls)
	}
	if got := listKeys(t, bucket); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("bucket holds %v, want %v", got, want)
	}
	for _, k := range want {
		c, _, err := bucket.Open(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || blobtest.Key(b) != k {
			t.Errorf("blob %s in the bucket hashes to %s (%v)", k, blobtest.Key(b), err)
		}
	}
	rep, err = blob.Copy(ctx, bucket, fs, blob.CopyOptions{})
	if err != nil || rep.Copied != 0 || rep.Skipped != 6 {
		t.Errorf("rerun = %+v, %v; want everything skipped", rep, err)
	}
	back := newFS(t)
	rep, err = blob.Copy(ctx, back, bucket, blob.CopyOptions{Workers: 2})
	if err != nil || rep.Copied != 6 {
		t.Fatalf("copy back = %+v, %v", rep, err)
	}
	if got := listKeys(t, back); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("copied back %v, want %v", got, want)
	}
}

// TestCopyRefusesDamagedSource: a source file whose bytes no longer match
// its name is reported and not stored under either name; the others are
// copied, and a rerun after repairing it completes.
func TestCopyRefusesDamagedSource(t *testing.T) {
	ctx := t.Context()
	fs := newFS(t)
	good, err := fs.Put(ctx, bytes.NewReader(blobtest.Data(50, 1000)), 0)
	if err != nil {
		t.Fatal(err)
	}
	data := blobtest.Data(51, 1000)
	bad, err := fs.Put(ctx, bytes.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(fs.Dir(), "sha256", bad.SHA256[:2], bad.SHA256)
	damaged := bytes.Clone(data)
	damaged[500] ^= 0xff
	if err := os.WriteFile(p, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	bucket := newS3(t)
	rep, err := blob.Copy(ctx, bucket, fs, blob.CopyOptions{})
	if err == nil || !strings.Contains(err.Error(), bad.SHA256) || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("Copy error = %v, want one naming the damaged blob", err)
	}
	if rep.Copied != 1 {
		t.Errorf("report %+v, want the good blob copied", rep)
	}
	if got := listKeys(t, bucket); len(got) != 1 || got[0] != good.SHA256 {
		t.Errorf("bucket holds %v, want only the good blob", got)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if rep, err := blob.Copy(ctx, bucket, fs, blob.CopyOptions{}); err != nil || rep.Copied != 1 || rep.Skipped != 1 {
		t.Errorf("rerun after the repair = %+v, %v", rep, err)
	}
}

func TestCopyKeysAndCancel(t *testing.T) {
	ctx := t.Context()
	src, dst := newFS(t), newFS(t)
	a, _ := src.Put(ctx, strings.NewReader("a"), 0)
	b, _ := src.Put(ctx, strings.NewReader("b"), 0)
	rep, err := blob.Copy(ctx, dst, src, blob.CopyOptions{Keys: []string{a.SHA256, a.SHA256}})
	if err != nil || rep.Blobs != 1 || rep.Copied != 1 {
		t.Fatalf("copy of one key = %+v, %v", rep, err)
	}
	if _, err := dst.Stat(ctx, b.SHA256); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("a key not asked for was copied: %v", err)
	}
	missing := blobtest.Key([]byte("not there"))
	if _, err := blob.Copy(ctx, dst, src, blob.CopyOptions{Keys: []string{missing}}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("copy of a key the source lacks: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := blob.Copy(cctx, dst, src, blob.CopyOptions{Keys: []string{b.SHA256}}); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "run it again") {
		t.Errorf("cancelled copy: %v", err)
	}
}
