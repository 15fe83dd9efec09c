package bridge

import (
	"strconv"
	"strings"
	"testing"
)

func TestRecentKeepsTheLastNewestFirst(t *testing.T) {
	b := &Bridge{}
	if got := b.RecentDeadLetters(); len(got) != 0 {
		t.Fatalf("empty bridge: %d dead letters", len(got))
	}
	for i := range RecentSize + 5 {
		b.recent.deadLetter("err "+strconv.Itoa(i), int64(i))
		b.recent.result(Result{ID: "c-" + strconv.Itoa(i), Offset: int64(i)})
	}
	dead, res := b.RecentDeadLetters(), b.RecentResults()
	if len(dead) != RecentSize || len(res) != RecentSize {
		t.Fatalf("kept %d dead letters and %d results, want %d each", len(dead), len(res), RecentSize)
	}
	for i := range RecentSize {
		want := RecentSize + 4 - i
		if dead[i].Error != "err "+strconv.Itoa(want) || dead[i].Bytes != int64(want) || dead[i].At.IsZero() {
			t.Errorf("dead letter %d = %+v, want err %d", i, dead[i], want)
		}
		if res[i].ID != "c-"+strconv.Itoa(want) {
			t.Errorf("result %d = %s, want c-%d", i, res[i].ID, want)
		}
	}
}

func TestRecentBoundsMemory(t *testing.T) {
	b := &Bridge{}
	long := strings.Repeat("x", 10*recentErrorMax)
	b.recent.deadLetter(long, 1)
	if got := b.RecentDeadLetters()[0].Error; len(got) > recentErrorMax+len("…") {
		t.Errorf("kept %d bytes of error text, want at most %d", len(got), recentErrorMax)
	}
	// Recording allocates nothing: the ring is a fixed array.
	if n := testing.AllocsPerRun(100, func() { b.recent.deadLetter("bad push", 10) }); n != 0 {
		t.Errorf("deadLetter allocates %.0f times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { b.recent.result(Result{ID: "x"}) }); n != 0 {
		t.Errorf("result allocates %.0f times, want 0", n)
	}
}
