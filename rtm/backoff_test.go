package rtm

import (
	"math/rand/v2"
	"testing"
	"time"
)

// randMax and randZero are the extreme jitter sources: always the top or
// the bottom of the range.
func randMax(m int64) int64 { return m - 1 }
func randZero(int64) int64  { return 0 }

func TestBackoffDefaultSchedule(t *testing.T) {
	var b Backoff // zero value: the defaults
	ms := time.Millisecond
	wantBase := []time.Duration{
		100 * ms, 100 * ms, 100 * ms, // fast tries
		500 * ms, 1000 * ms, 2000 * ms, 4000 * ms, 8000 * ms, 16000 * ms,
		30 * time.Second, 30 * time.Second, 30 * time.Second,
	}
	for i, want := range wantBase {
		n := i + 1
		if got := b.Base(n); got != want {
			t.Errorf("Base(%d) = %s, want %s", n, got, want)
		}
		lo, hi := b.Delay(n, randZero), b.Delay(n, randMax)
		if n <= 3 {
			if lo != 0 || hi != 100*ms-1 {
				t.Errorf("fast try %d: delay range [%s, %s], want [0, 100ms)", n, lo, hi)
			}
			continue
		}
		if lo != 500*ms || hi != want {
			t.Errorf("Delay(%d) range [%s, %s], want [500ms, %s]", n, lo, hi, want)
		}
	}
}

func TestBackoffCapAndHugeAttempts(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 7 * time.Second, FastTries: -1}
	for _, n := range []int{1, 2, 3, 4, 5, 100, 1 << 30} {
		d := b.Delay(n, randMax)
		if d < time.Second || d > 7*time.Second {
			t.Fatalf("Delay(%d) = %s, outside [1s, 7s]", n, d)
		}
	}
	if got := b.Delay(1, randMax); got != time.Second {
		t.Errorf("no fast tries: Delay(1) = %s, want the 1s floor", got)
	}
	if got := b.Base(1 << 30); got != 7*time.Second {
		t.Errorf("Base(huge) = %s, want the cap", got)
	}
	// A cap close to the largest Duration must not overflow while doubling.
	big := Backoff{Min: time.Second, Max: time.Duration(1<<63 - 1), FastTries: -1}
	if got := big.Base(200); got != big.Max {
		t.Errorf("Base(200) with a huge cap = %s, want the cap", got)
	}
}

func TestBackoffNormalization(t *testing.T) {
	b := Backoff{Min: 2 * time.Second, Max: time.Second}.normalized()
	if b.Max != b.Min {
		t.Errorf("Max below Min: got Max %s, want it raised to Min %s", b.Max, b.Min)
	}
	if got := (Backoff{}).Delay(0, randMax); got != DefaultBackoffFastJitter-1 {
		t.Errorf("Delay(0) = %s, want it treated as the first try", got)
	}
}

func TestBackoffJitterSpreads(t *testing.T) {
	// With a real random source the delays of one step differ (jitter), and
	// all stay in range.
	r := rand.New(rand.NewPCG(1, 2))
	var b Backoff
	seen := map[time.Duration]bool{}
	for range 50 {
		d := b.Delay(10, r.Int64N)
		if d < DefaultBackoffMin || d > DefaultBackoffMax {
			t.Fatalf("Delay(10) = %s, outside [%s, %s]", d, DefaultBackoffMin, DefaultBackoffMax)
		}
		seen[d] = true
	}
	if len(seen) < 40 {
		t.Errorf("50 jittered delays gave only %d distinct values", len(seen))
	}
}
