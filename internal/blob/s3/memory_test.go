package s3_test

import (
	"bufio"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otaship/ota/internal/blob/s3"
)

// budgetRSS is what one upload of any size may add to otad's resident
// memory (issue 11: a 1 GB upload must not grow it by more than 64 MB).
const budgetRSS = 64 << 20

// procStatus reads a field of /proc/self/status in bytes (Linux only).
func procStatus(t *testing.T, field string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("parse %s %q: %v", field, v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestPut1GBBoundedMemory streams 1 GiB through Put with the default part
// size and concurrency and measures how much the process's peak resident
// memory (VmHWM, reset before the upload) and Go heap grow.
func TestPut1GBBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB through the S3 server")
	}
	s, _ := newStore(t, nil)
	const size = 1 << 30
	runtime.GC()
	// Writing 5 to clear_refs resets the peak to the current RSS.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
	baseRSS := procStatus(t, "VmRSS")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapInuse

	var peakHeap atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peakHeap.Load() {
					peakHeap.Store(m.HeapInuse)
				}
			}
		}
	})
	start := time.Now()
	info, err := s.Put(t.Context(), io.LimitReader(zeros{}, size), size)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Put(1 GiB): %v", err)
	}
	if info.Size != size {
		t.Fatalf("Put size = %d, want %d", info.Size, size)
	}
	grewRSS := procStatus(t, "VmHWM") - baseRSS
	grewHeap := int64(peakHeap.Load()) - int64(baseHeap)
	t.Logf("1 GiB upload in %s (%.0f MB/s): peak RSS grew %.1f MiB, peak heap in use grew %.1f MiB (part size %d MiB, %d in flight)",
		took.Round(time.Millisecond), float64(size)/took.Seconds()/1e6, float64(grewRSS)/(1<<20), float64(grewHeap)/(1<<20),
		s3.DefaultPartSize>>20, s3.DefaultConcurrency)
	if raceEnabled {
		// The race detector's shadow memory inflates RSS several times
		// over; the heap still tells whether the upload's memory is
		// bounded.
		if grewHeap > budgetRSS {
			t.Errorf("peak heap grew by %d MiB during a 1 GiB upload, want at most %d MiB", grewHeap>>20, budgetRSS>>20)
		}
		return
	}
	if grewRSS > budgetRSS {
		t.Errorf("peak RSS grew by %d MiB during a 1 GiB upload, want at most %d MiB", grewRSS>>20, budgetRSS>>20)
	}
}
