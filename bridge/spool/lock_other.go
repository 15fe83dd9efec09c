//go:build !unix

package spool

import "errors"

// dirLock is not implemented outside unix: without flock(2) two processes
// could append to one spool.
type dirLock struct{}

func lockDir(dir string) (*dirLock, error) {
	return nil, errors.New("spool: directory locking needs flock(2), available on unix only")
}

func (l *dirLock) release() error { return nil }
