//go:build unix

package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dirLock is an exclusive flock(2) on dir/LOCK. flock locks belong to the
// open file description, so a second Open in the same process, with its own
// descriptor, is refused just like another process.
type dirLock struct {
	f *os.File
}

// lockDir takes the lock or returns an error wrapping ErrLocked that names
// the holder's pid.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "unknown"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid := strings.TrimSpace(string(b)); pid != "" {
				holder = pid
			}
		}
		_ = f.Close() // the flock failure is the error to report
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("spool dir %s is held by another running rtm2kafka (pid %s): %w", dir, holder, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := writePid(f, os.Getpid()); err != nil {
		_ = f.Close() // closing releases the lock; the write error is the one to report
		return nil, fmt.Errorf("lock: %w", err)
	}
	return &dirLock{f: f}, nil
}

// writePid replaces f's content with pid and a newline.
func writePid(f *os.File, pid int) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("write pid: %w", err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0); err != nil {
		return fmt.Errorf("write pid: %w", err)
	}
	return nil
}

// release drops the lock. The LOCK file stays: removing it would let two
// openers lock two different files of the same name.
func (l *dirLock) release() error {
	if err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN); err != nil {
		_ = l.f.Close() // closing releases the lock as well
		return fmt.Errorf("unlock: %w", err)
	}
	return l.f.Close()
}
