package bridge

import (
	"sync"
	"time"
)

// RecentSize is how many dead letters and control results the bridge
// remembers for the operator's console ([Bridge.RecentDeadLetters],
// [Bridge.RecentResults]).
const RecentSize = 20

// recentErrorMax bounds the error text a [DeadLetterNote] keeps, so the
// memory the notes hold stays bounded whatever a decoder error says.
const recentErrorMax = 512

// DeadLetterNote describes one push written to the dead-letter topic (and
// acknowledged there) for the console: when, why, and how large its record
// was. The record itself is in <prefix>.deadletter.
type DeadLetterNote struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
	Bytes int64     `json:"bytes"`
}

// ring keeps the last RecentSize values added; its array never grows.
type ring[T any] struct {
	buf  [RecentSize]T
	next int // where the next value goes
	n    int // values held, at most RecentSize
}

func (r *ring[T]) add(v T) {
	r.buf[r.next] = v
	r.next = (r.next + 1) % RecentSize
	r.n = min(r.n+1, RecentSize)
}

// newestFirst copies the values out, the newest first.
func (r *ring[T]) newestFirst() []T {
	out := make([]T, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.buf[(r.next-i+RecentSize)%RecentSize])
	}
	return out
}

// recent remembers the last dead letters and control results. The zero
// value is ready; it is touched once per dead letter and once per control
// command, never on the normal push path.
type recent struct {
	mu      sync.Mutex
	dead    ring[DeadLetterNote]
	results ring[Result]
}

// deadLetter notes a dead letter Kafka acknowledged.
func (r *recent) deadLetter(errText string, size int64) {
	if len(errText) > recentErrorMax {
		errText = errText[:recentErrorMax] + "…"
	}
	n := DeadLetterNote{At: time.Now(), Error: errText, Bytes: size}
	r.mu.Lock()
	r.dead.add(n)
	r.mu.Unlock()
}

// result notes a control result written to the results topic. The listen
// state it carries is shared, not copied: results are never changed after
// they are written.
func (r *recent) result(res Result) {
	r.mu.Lock()
	r.results.add(res)
	r.mu.Unlock()
}

// RecentDeadLetters returns the last (at most [RecentSize]) dead letters
// Kafka acknowledged, the newest first.
func (b *Bridge) RecentDeadLetters() []DeadLetterNote {
	b.recent.mu.Lock()
	defer b.recent.mu.Unlock()
	return b.recent.dead.newestFirst()
}

// RecentResults returns the last (at most [RecentSize]) control results
// written to the control-results topic, the newest first. Their listen
// states must not be modified.
func (b *Bridge) RecentResults() []Result {
	b.recent.mu.Lock()
	defer b.recent.mu.Unlock()
	return b.recent.results.newestFirst()
}
