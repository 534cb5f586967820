// Package blobtest is a conformance suite for blob.Store implementations:
// every backend (the local directory, S3) must pass Run.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otaship/ota/internal/blob"
)

// Run checks the blob.Store contract on stores made by newStore. Each
// subtest gets a fresh, empty store.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"PutOpenRoundTrip", testRoundTrip},
		{"PutDedup", testDedup},
		{"Empty", testEmpty},
		{"Limit", testLimit},
		{"InvalidKeys", testInvalidKeys},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"List", testList},
		{"ListStopsOnError", testListError},
		{"Seek", testSeek},
		{"ReaderError", testReaderError},
		{"Cancelled", testCancelled},
		{"ConcurrentSameContent", testConcurrent},
		{"Large", testLarge},
		{"ModTime", testModTime},
		{"SeekPastEnd", testSeekPastEnd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

// Data returns n deterministic pseudo-random bytes for seed.
func Data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Key returns the store key of b.
func Key(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// keys lists what the store holds, sorted.
func keys(t *testing.T, s blob.Store) []string {
	t.Helper()
	var ks []string
	err := s.List(t.Context(), func(i blob.Info) error {
		ks = append(ks, i.SHA256)
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	sort.Strings(ks)
	return ks
}

func mustPut(t *testing.T, s blob.Store, b []byte) blob.Info {
	t.Helper()
	info, err := s.Put(t.Context(), bytes.NewReader(b), 0)
	if err != nil {
		t.Fatalf("Put(%d bytes): %v", len(b), err)
	}
	return info
}

func readAll(t *testing.T, s blob.Store, key string) ([]byte, blob.Info) {
	t.Helper()
	c, info, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b, info
}

func testRoundTrip(t *testing.T, s blob.Store) {
	data := Data(1, 300<<10+7) // spans several copy buffers
	info := mustPut(t, s, data)
	if want := Key(data); info.SHA256 != want {
		t.Errorf("Put SHA256 = %s, want %s", info.SHA256, want)
	}
	if info.Size != int64(len(data)) {
		t.Errorf("Put Size = %d, want %d", info.Size, len(data))
	}
	if !info.New {
		t.Error("first Put: New = false, want true")
	}
	got, oinfo := readAll(t, s, info.SHA256)
	if !bytes.Equal(got, data) {
		t.Errorf("Open returned %d bytes that differ from the %d put", len(got), len(data))
	}
	if oinfo.SHA256 != info.SHA256 || oinfo.Size != info.Size {
		t.Errorf("Open info = %+v, want key %s size %d", oinfo, info.SHA256, info.Size)
	}
	st, err := s.Stat(t.Context(), info.SHA256)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if st.SHA256 != info.SHA256 || st.Size != info.Size || st.New {
		t.Errorf("Stat = %+v, want key %s size %d New false", st, info.SHA256, info.Size)
	}
}

func testDedup(t *testing.T, s blob.Store) {
	data := Data(2, 4096)
	first := mustPut(t, s, data)
	second := mustPut(t, s, data)
	if second.New {
		t.Error("second Put of identical bytes: New = true, want false")
	}
	if second.SHA256 != first.SHA256 || second.Size != first.Size {
		t.Errorf("second Put = %+v, want same key and size as %+v", second, first)
	}
	if got := keys(t, s); len(got) != 1 {
		t.Errorf("List after two identical Puts = %v, want one blob", got)
	}
	other := mustPut(t, s, Data(3, 4096))
	if !other.New || other.SHA256 == first.SHA256 {
		t.Errorf("Put of different bytes = %+v, want a new blob with another key", other)
	}
}

func testEmpty(t *testing.T, s blob.Store) {
	info := mustPut(t, s, nil)
	if want := Key(nil); info.SHA256 != want || info.Size != 0 {
		t.Errorf("Put(empty) = %+v, want key %s size 0", info, want)
	}
	got, _ := readAll(t, s, info.SHA256)
	if len(got) != 0 {
		t.Errorf("Open(empty blob) returned %d bytes", len(got))
	}
}

func testLimit(t *testing.T, s blob.Store) {
	data := Data(4, 1000)
	tests := []struct {
		name    string
		limit   int64
		wantErr error
	}{
		{"no limit", 0, nil},
		{"negative is no limit", -1, nil},
		{"exactly the limit", 1000, nil},
		{"above the size", 5000, nil},
		{"one byte over", 999, blob.ErrTooLarge},
		{"far over", 1, blob.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = s.Delete(t.Context(), Key(data))
			info, err := s.Put(t.Context(), bytes.NewReader(data), tt.limit)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Put(limit %d) error = %v, want %v", tt.limit, err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if got := keys(t, s); len(got) != 0 {
					t.Errorf("rejected Put left blobs %v", got)
				}
				if _, err := s.Stat(t.Context(), Key(data)); !errors.Is(err, blob.ErrNotFound) {
					t.Errorf("Stat after rejected Put: %v, want ErrNotFound", err)
				}
				return
			}
			if info.Size != int64(len(data)) {
				t.Errorf("Put size = %d, want %d", info.Size, len(data))
			}
		})
	}
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	info := mustPut(t, s, []byte("hello"))
	for _, k := range []string{
		"",
		"..",
		"../../../../etc/passwd",
		strings.ToUpper(info.SHA256),
		info.SHA256[:63],
		info.SHA256 + "0",
		info.SHA256[:2] + "/" + info.SHA256,
		"sha256/" + info.SHA256,
		info.SHA256[:62] + "g0",
		info.SHA256[:63] + "\x00",
		strings.Repeat(".", 64),
		strings.Repeat("/", 64),
	} {
		if _, _, err := s.Open(t.Context(), k); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Open(%q) error = %v, want ErrNotFound", k, err)
		}
		if _, err := s.Stat(t.Context(), k); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Stat(%q) error = %v, want ErrNotFound", k, err)
		}
		if err := s.Delete(t.Context(), k); err != nil {
			t.Errorf("Delete(%q) = %v, want nil", k, err)
		}
	}
	if _, err := s.Stat(t.Context(), info.SHA256); err != nil {
		t.Errorf("valid blob gone after deletes of invalid keys: %v", err)
	}
}

func testMissing(t *testing.T, s blob.Store) {
	k := Key([]byte("never stored"))
	if _, _, err := s.Open(t.Context(), k); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open(missing) error = %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(t.Context(), k); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat(missing) error = %v, want ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), k); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
}

func testDelete(t *testing.T, s blob.Store) {
	a := mustPut(t, s, []byte("a"))
	b := mustPut(t, s, []byte("b"))
	if err := s.Delete(t.Context(), a.SHA256); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, _, err := s.Open(t.Context(), a.SHA256); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open(deleted) error = %v, want ErrNotFound", err)
	}
	if got := keys(t, s); len(got) != 1 || got[0] != b.SHA256 {
		t.Errorf("List after Delete = %v, want [%s]", got, b.SHA256)
	}
	if err := s.Delete(t.Context(), a.SHA256); err != nil {
		t.Errorf("second Delete = %v, want nil", err)
	}
	again := mustPut(t, s, []byte("a"))
	if !again.New {
		t.Error("Put after Delete: New = false, want true")
	}
}

func testList(t *testing.T, s blob.Store) {
	if got := keys(t, s); len(got) != 0 {
		t.Fatalf("List of a new store = %v, want none", got)
	}
	want := map[string]int64{}
	for i := range 20 {
		b := Data(uint64(100+i), i*10)
		info := mustPut(t, s, b)
		want[info.SHA256] = info.Size
	}
	got := map[string]int64{}
	err := s.List(t.Context(), func(i blob.Info) error {
		if _, dup := got[i.SHA256]; dup {
			t.Errorf("List reported %s twice", i.SHA256)
		}
		got[i.SHA256] = i.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

func testListError(t *testing.T, s blob.Store) {
	mustPut(t, s, []byte("one"))
	mustPut(t, s, []byte("two"))
	stop := errors.New("stop")
	calls := 0
	err := s.List(t.Context(), func(blob.Info) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Errorf("List error = %v, want the callback's error", err)
	}
	if calls != 1 {
		t.Errorf("callback ran %d times after returning an error, want 1", calls)
	}
}

func testSeek(t *testing.T, s blob.Store) {
	data := Data(5, 10000)
	info := mustPut(t, s, data)
	c, _, err := s.Open(t.Context(), info.SHA256)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer c.Close()
	if _, err := c.Seek(9000, io.SeekStart); err != nil {
		t.Fatalf("Seek: %v", err)
	}
	buf := make([]byte, 100)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read after Seek: %v", err)
	}
	if !bytes.Equal(buf, data[9000:9100]) {
		t.Error("bytes after Seek(9000) differ from the stored ones")
	}
	end, err := c.Seek(0, io.SeekEnd)
	if err != nil || end != int64(len(data)) {
		t.Errorf("Seek(0, End) = %d, %v, want %d", end, err, len(data))
	}
}

// failingReader yields some bytes, then an error, like a dropped upload.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func testReaderError(t *testing.T, s blob.Store) {
	cut := errors.New("connection reset")
	_, err := s.Put(t.Context(), &failingReader{data: Data(6, 100000), err: cut}, 0)
	if !errors.Is(err, cut) {
		t.Fatalf("Put error = %v, want the reader's error", err)
	}
	if got := keys(t, s); len(got) != 0 {
		t.Errorf("failed Put left blobs %v", got)
	}
}

func testCancelled(t *testing.T, s blob.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Put(ctx, bytes.NewReader([]byte("x")), 0)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context: error = %v, want context.Canceled", err)
	}
	if got := keys(t, s); len(got) != 0 {
		t.Errorf("cancelled Put left blobs %v", got)
	}
}

func testConcurrent(t *testing.T, s blob.Store) {
	data := Data(7, 50000)
	const n = 8
	var wg sync.WaitGroup
	infos := make([]blob.Info, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			infos[i], errs[i] = s.Put(context.Background(), bytes.NewReader(data), 0)
		})
	}
	wg.Wait()
	news := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent Put %d: %v", i, errs[i])
		}
		if infos[i].New {
			news++
		}
	}
	if news != 1 {
		t.Errorf("%d of %d concurrent identical Puts reported New, want exactly 1", news, n)
	}
	got, _ := readAll(t, s, Key(data))
	if !bytes.Equal(got, data) {
		t.Error("blob after concurrent Puts differs from the data")
	}
}

// testLarge stores a stream longer than a backend's upload part (S3 sends
// 8 MiB parts) that is not a multiple of it, read in small pieces.
func testLarge(t *testing.T, s blob.Store) {
	data := Data(12, 17<<20+5)
	info, err := s.Put(t.Context(), io.MultiReader(bytes.NewReader(data[:1000]), bytes.NewReader(data[1000:])), int64(len(data)))
	if err != nil {
		t.Fatalf("Put(%d bytes): %v", len(data), err)
	}
	if info.SHA256 != Key(data) || info.Size != int64(len(data)) {
		t.Fatalf("Put = %+v, want key %s size %d", info, Key(data), len(data))
	}
	got, _ := readAll(t, s, info.SHA256)
	if !bytes.Equal(got, data) {
		t.Errorf("Open returned %d bytes that differ from the %d put", len(got), len(data))
	}
	// One byte over the limit, found only in the last part.
	_ = s.Delete(t.Context(), info.SHA256)
	if _, err := s.Put(t.Context(), bytes.NewReader(data), int64(len(data))-1); !errors.Is(err, blob.ErrTooLarge) {
		t.Fatalf("Put one byte over the limit: %v, want ErrTooLarge", err)
	}
	if got := keys(t, s); len(got) != 0 {
		t.Errorf("rejected large Put left blobs %v", got)
	}
}

// timeSlack absorbs clock resolution: S3 reports times in whole seconds,
// from the server's clock.
const timeSlack = 2 * time.Second

// testModTime checks the time garbage collection's grace period counts
// from: a Put reports and stores the time it was made, and a Put of bytes
// stored already renews it.
func testModTime(t *testing.T, s blob.Store) {
	data := Data(13, 1000)
	before := time.Now()
	first := mustPut(t, s, data)
	after := time.Now()
	if first.ModTime.Before(before.Add(-timeSlack)) || first.ModTime.After(after.Add(timeSlack)) {
		t.Errorf("Put ModTime = %v, want between %v and %v", first.ModTime, before, after)
	}
	st, err := s.Stat(t.Context(), first.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if d := st.ModTime.Sub(first.ModTime); d < -timeSlack || d > timeSlack {
		t.Errorf("Stat ModTime = %v, Put said %v", st.ModTime, first.ModTime)
	}
	// Past one whole second, so that a renewed time differs even where
	// times are in seconds.
	time.Sleep(1100 * time.Millisecond)
	again := mustPut(t, s, data)
	if again.New {
		t.Error("second Put: New = true")
	}
	st2, err := s.Stat(t.Context(), first.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !st2.ModTime.After(st.ModTime) {
		t.Errorf("ModTime after a second Put of the same bytes = %v, want later than %v: a collection could delete the blob this upload is about to reference", st2.ModTime, st.ModTime)
	}
	var listed time.Time
	if err := s.List(t.Context(), func(i blob.Info) error { listed = i.ModTime; return nil }); err != nil {
		t.Fatal(err)
	}
	if d := listed.Sub(st2.ModTime); d < -timeSlack || d > timeSlack {
		t.Errorf("List ModTime = %v, Stat says %v", listed, st2.ModTime)
	}
}

// testSeekPastEnd reads nothing, and no error but EOF, past the end.
func testSeekPastEnd(t *testing.T, s blob.Store) {
	data := Data(14, 5000)
	info := mustPut(t, s, data)
	c, _, err := s.Open(t.Context(), info.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Seek(-100, io.SeekEnd); err != nil {
		t.Fatalf("Seek(-100, End): %v", err)
	}
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, data[len(data)-100:]) {
		t.Errorf("read after Seek(-100, End) = %d bytes, %v; want the last 100", len(got), err)
	}
	if _, err := c.Seek(0, io.SeekStart); err != nil {
		t.Fatalf("Seek back to the start: %v", err)
	}
	head := make([]byte, 10)
	if _, err := io.ReadFull(c, head); err != nil || !bytes.Equal(head, data[:10]) {
		t.Errorf("read after seeking back = %q, %v", head, err)
	}
}
