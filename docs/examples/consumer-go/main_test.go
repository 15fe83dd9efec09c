package main

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDedupeWindow(t *testing.T) {
	t0 := time.UnixMilli(1717000000000)
	d := newDedupe(time.Minute, 100)
	if !d.add("a", t0) || d.add("a", t0.Add(30*time.Second)) {
		t.Fatal("a second copy within the window must be a duplicate")
	}
	// A late copy with an old timestamp (a drained spool record) is still
	// caught while newer records have not moved the window past it.
	if !d.add("b", t0.Add(50*time.Second)) || d.add("a", t0) {
		t.Fatal("a late copy inside the window must be a duplicate")
	}
	// Once records a window newer have been read, "a" is forgotten.
	if !d.add("c", t0.Add(61*time.Second)) {
		t.Fatal("c is new")
	}
	if !d.add("a", t0.Add(62*time.Second)) {
		t.Fatal("a copy older than the window counts as new")
	}
	if d.add("b", t0.Add(62*time.Second)) {
		t.Fatal("b is still inside the window")
	}
}

func TestDedupeMaxKeys(t *testing.T) {
	t0 := time.UnixMilli(0)
	d := newDedupe(time.Hour, 2)
	d.add("a", t0)
	d.add("b", t0)
	d.add("c", t0) // evicts a, the oldest
	if len(d.keys) != 2 {
		t.Fatalf("%d keys kept, want 2", len(d.keys))
	}
	if d.add("c", t0) || d.add("b", t0) {
		t.Fatal("b and c are remembered")
	}
	if !d.add("a", t0) {
		t.Fatal("a was evicted and counts as new")
	}
}

func TestDedupeKey(t *testing.T) {
	h := func(kv ...string) []kgo.RecordHeader {
		var out []kgo.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			out = append(out, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	cases := []struct {
		hs   []kgo.RecordHeader
		want string
	}{
		{h("rtm-scope", "p2p", "rtm-from", "1", "rtm-to", "2", "rtm-mid", "3", "rtm-pid", "9"), "m/p2p/1/2/3"},
		{h("rtm-scope", "group", "rtm-from", "1", "rtm-to", "7", "rtm-mid", "3"), "m/group/1/7/3"},
		{h("rtm-scope", "event", "rtm-to", "5", "rtm-event-id", "00ff"), "e/00ff"},
		{h("rtm-scope", "event", "rtm-to", "5"), ""}, // written before rtm-event-id existed
		{h("rtm-scope", "unknown"), ""},
		{nil, ""},
	}
	for _, c := range cases {
		if got := dedupeKey(&kgo.Record{Headers: c.hs}); got != c.want {
			t.Errorf("dedupeKey(%v) = %q, want %q", c.hs, got, c.want)
		}
	}
}
