//go:build unix

package capapp

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on path, waiting for other processes
// that hold it. The kernel drops the lock when a holder dies, so a killed
// test run cannot leave it stuck.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
