package bolt

import (
	"sync"
	"time"
)

// reserveCheckEvery is how long one look at the free space stands: stats
// batches come many a second, and statfs is a system call.
const reserveCheckEvery = time.Second

// diskReserve tells whether the file system of dir has less free space
// than min, looking at most once every reserveCheckEvery.
type diskReserve struct {
	dir  string
	min  uint64
	free func(dir string) (uint64, bool) // freeBytes; tests replace it

	mu      sync.Mutex
	checked time.Time
	low     bool
}

func newDiskReserve(dir string, min uint64) *diskReserve {
	return &diskReserve{dir: dir, min: min, free: freeBytes}
}

// short reports whether the free space is below the reserve. Where it
// cannot be read, it is not.
func (r *diskReserve) short() bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= reserveCheckEvery {
		free, ok := r.free(r.dir)
		r.low, r.checked = ok && free < r.min, now
	}
	return r.low
}
