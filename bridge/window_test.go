package bridge

import (
	"context"
	"errors"
	"testing"
	"time"
)

// acquireAsync starts acquire on its own goroutine and returns its result channel.
func acquireAsync(ctx context.Context, w *window, n int64) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- w.acquire(ctx, n) }()
	return ch
}

// mustBlock waits until somebody waits on w and checks that the acquire
// behind ch has not returned: a state, not a clock.
func mustBlock(t *testing.T, w *window, ch <-chan error) {
	t.Helper()
	eventually(t, 10*time.Second, "a waiter on the window", func() (bool, string) {
		return windowWaiters(w), "nobody waits"
	})
	select {
	case err := <-ch:
		t.Fatalf("acquire returned %v, want it to wait", err)
	default:
	}
}

func mustReturn(t *testing.T, ch <-chan error, want error) {
	t.Helper()
	select {
	case err := <-ch:
		if !errors.Is(err, want) {
			t.Fatalf("acquire = %v, want %v", err, want)
		}
	case <-time.After(30 * time.Second): // only catches a hang
		t.Fatal("acquire still waiting")
	}
}

func TestWindowRecords(t *testing.T) {
	ctx := context.Background()
	w := newWindow(2, 1000)
	for i := 0; i < 2; i++ {
		if err := w.acquire(ctx, 10); err != nil {
			t.Fatal(err)
		}
	}
	third := acquireAsync(ctx, w, 10)
	mustBlock(t, w, third)
	w.release(10)
	mustReturn(t, third, nil)
	if r, b := w.inflight(); r != 2 || b != 20 {
		t.Fatalf("inflight %d records %d bytes, want 2 and 20", r, b)
	}
}

func TestWindowBytes(t *testing.T) {
	ctx := context.Background()
	w := newWindow(100, 100)
	if err := w.acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	next := acquireAsync(ctx, w, 50)
	mustBlock(t, w, next)
	w.release(60)
	mustReturn(t, next, nil)
}

func TestWindowHugeRecordAloneWhenEmpty(t *testing.T) {
	ctx := context.Background()
	w := newWindow(10, 100)
	if err := w.acquire(ctx, 1); err != nil {
		t.Fatal(err)
	}
	huge := acquireAsync(ctx, w, 500)
	mustBlock(t, w, huge)
	w.release(1)
	mustReturn(t, huge, nil) // admitted into the empty window
	small := acquireAsync(ctx, w, 1)
	mustBlock(t, w, small) // and alone
	w.release(500)
	mustReturn(t, small, nil)
}

func TestWindowCancelAndStop(t *testing.T) {
	w := newWindow(1, 100)
	if err := w.acquire(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	waiting := acquireAsync(ctx, w, 1)
	mustBlock(t, w, waiting)
	cancel()
	mustReturn(t, waiting, context.Canceled)

	waiting = acquireAsync(context.Background(), w, 1)
	mustBlock(t, w, waiting)
	empty := make(chan error, 1)
	go func() { empty <- w.waitEmpty(context.Background()) }()
	w.stop()
	mustReturn(t, waiting, ErrClosed)
	mustBlock(t, w, empty) // one record still in flight
	w.release(1)
	mustReturn(t, empty, nil)
	if err := w.acquire(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("acquire after stop = %v, want ErrClosed", err)
	}
}
