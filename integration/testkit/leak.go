package testkit

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// Leak-check timing: a count is stable once it has not changed for
// stableFor; a test's goroutines get leakTimeout to wind down.
const (
	stableFor   = 100 * time.Millisecond
	stableMax   = 5 * time.Second
	leakTimeout = 10 * time.Second
)

// StableGoroutines returns the goroutine count once it has stopped moving
// (unchanged for 100 ms, at most 5 s), like nats.go's
// getStableNumGoroutine: a baseline taken while earlier tests' goroutines
// are still exiting would be too high and hide a leak.
func StableGoroutines() int {
	deadline := time.Now().Add(stableMax)
	last, since := runtime.NumGoroutine(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // sampling a count: there is no event to wait on
		n := runtime.NumGoroutine()
		if n != last {
			last, since = n, time.Now()
			continue
		}
		if time.Since(since) >= stableFor {
			break
		}
	}
	return last
}

// WaitGoroutines waits (up to 10 s) until the goroutine count is back at
// base or below, and otherwise fails the test with every goroutine's stack.
func WaitGoroutines(t testing.TB, base int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), leakTimeout)
	defer cancel()
	if Wait(ctx, "goroutines", func() bool { return runtime.NumGoroutine() <= base }) == nil {
		return
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	t.Fatalf("testkit: goroutine leak: %d goroutines %v after the test, baseline %d\n%s",
		runtime.NumGoroutine(), leakTimeout, base, buf)
}

// CheckLeaks takes a stable baseline now and registers a cleanup that
// waits for the count to come back to it. Call it first in a test, before
// anything whose cleanup ends goroutines: cleanups run last-in first-out,
// so the check runs after them. It returns the baseline.
func CheckLeaks(t testing.TB) int {
	t.Helper()
	base := StableGoroutines()
	t.Cleanup(func() { WaitGoroutines(t, base) })
	return base
}
