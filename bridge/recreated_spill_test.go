package bridge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// TestParkedRecordSpilledDoesNotStallDrain: a record parked for a re-created
// topic (state stInflight, still in the watcher's FIFO) is taken by spill()
// (stSpilled, appended to the spool WITH a copy id, answered OK after fsync).
// recoverLoop then skips it ("spilled meanwhile: the spool has it") without
// producing it, and before the fix without copyDone: its copy stayed copyPending forever, the
// drain waited on it forever and the bridge never left spill mode.
//
// The recovery's wait for the topic's in-flight records is held open with
// ts.inflight (as another record of the topic still in the producer would),
// so the watcher spills while the record is parked.
func TestParkedRecordSpilledDoesNotStallDrain(t *testing.T) {
	dir := t.TempDir()
	b, _ := testBridge(t, func(c *Config) {
		c.SpoolDir = dir
		c.SpoolAckBudget = 200 * time.Millisecond
	})
	rs := newReplies(1)
	p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 7, To: 1000, MType: 30, MID: 1, Msg: []byte("m")}
	rec := b.newRecord(&p, rs.reply(0))
	if err := b.win.acquire(context.Background(), rec.size); err != nil {
		t.Fatal(err)
	}
	// routeToSpool on the fast path: tracked in the FIFO.
	if b.routeToSpool(context.Background(), rec) {
		t.Fatal("spilling already")
	}
	// Another record of the topic still in the producer: recovery waits for it.
	rec.ts.inflight.Add(1)
	// The producer failed rec with UNKNOWN_TOPIC_ID: finish parks it.
	b.park(rec)
	// The watcher spills it once it is older than the budget.
	rs.wait(t, 1, 10*time.Second)
	if a := rs.get(0); len(a) != 1 || a[0].code != 0 {
		t.Fatalf("answers %+v", a)
	}
	t.Logf("parked record answered OK from the spool; state=%d copyOut=%d", rec.state.Load(), rec.copyOut.Load())
	// The other record settles: recovery goes on and finds rec spilled.
	rec.ts.inflight.Add(-1)
	eventually(t, 15*time.Second, "spool drained and spill mode left", func() (bool, string) {
		spilling, n := b.Spilling()
		return !spilling && n == 0, fmt.Sprintf("spilling=%v records=%d copyOut=%d active=%d", spilling, n, rec.copyOut.Load(), b.rec.active.Load())
	})
}
