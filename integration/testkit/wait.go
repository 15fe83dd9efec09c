package testkit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// pollEvery is how often [Eventually] and [Wait] re-check a condition:
// often enough that a test does not idle, rarely enough that a busy
// condition (a metric scrape, a Kafka request) does not load a shared
// 2-core machine.
const (
	pollFirst = time.Millisecond
	pollMax   = 50 * time.Millisecond
)

// Eventually calls cond until it returns true, and fails the test (Fatal)
// when timeout passes first. msg describes what is awaited: a format
// string and its arguments (fmt.Sprintf), or any values (fmt.Sprint). The
// first checks follow each other quickly and the pause grows to 50 ms, so
// fast conditions are seen at once and slow ones cost little. cond runs on
// the test's goroutine.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := Wait(ctx, message(msg), cond); err != nil {
		t.Fatalf("testkit: %v (waited %v)", err, timeout)
	}
}

// Wait is [Eventually] for code without a testing.TB (harnesses, helpers
// that return errors): it returns nil once cond is true, or an error naming
// what when ctx ends first.
func Wait(ctx context.Context, what string, cond func() bool) error {
	pause := pollFirst
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for !cond() {
		t.Reset(pause)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, pollMax)
	}
	return nil
}

func message(msg []any) string {
	switch {
	case len(msg) == 0:
		return "a condition"
	case len(msg) > 1:
		if f, ok := msg[0].(string); ok {
			return fmt.Sprintf(f, msg[1:]...)
		}
	}
	return fmt.Sprint(msg...)
}
