//go:build linux || darwin || freebsd || openbsd

package bolt

import "golang.org/x/sys/unix"

// freeBytes is the space of dir's file system available to otad (not
// counting the part reserved for root).
func freeBytes(dir string) (uint64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true //nolint:unconvert // the field types differ by OS
}
