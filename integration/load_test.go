package integration_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/integration"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// generate runs sim.Generate on its own goroutine; the channel yields its
// result.
func generate(t *testing.T, sim *rtmsim.Server, lc rtmsim.LoadConfig) <-chan rtmsim.LoadResult {
	t.Helper()
	ch := make(chan rtmsim.LoadResult, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	go func() {
		res, err := sim.Generate(ctx, lc)
		if err != nil {
			t.Errorf("Generate: %v", err)
		}
		ch <- res
	}()
	return ch
}

func waitGen(t *testing.T, ch <-chan rtmsim.LoadResult, d time.Duration) rtmsim.LoadResult {
	t.Helper()
	select {
	case res := <-ch:
		t.Logf("load: messages=%d pushes=%d not_covered=%d answered=%d errored=%d overdue=%d unanswered=%d in %v",
			res.Messages, res.Pushes, res.NotCovered, res.Answered, res.Errored, res.Overdue, res.Unanswered, res.Elapsed.Round(time.Millisecond))
		return res
	case <-time.After(d):
		t.Fatalf("load run not finished after %v", d)
	}
	panic("unreachable")
}

// TestOrderPerKey: under concurrency, per key (target) the records of each
// topic are in the order the simulator pushed them, and every push is there.
func TestOrderPerKey(t *testing.T) {
	e := setup(t, rtmsim.Config{}, nil)
	e.Start(nil)
	const total = 5000
	res := waitGen(t, generate(t, e.Sim, rtmsim.LoadConfig{Total: total, Keys: 50, MaxInFlight: 5000, Seed: 42, Binary: 0.1}), 90*time.Second)
	if res.Messages != total || res.Pushes != total || res.Answered != total {
		t.Fatalf("want %d messages pushed and answered in time: %+v", total, res)
	}
	ex, recs := e.Check()
	t.Logf("sent %d, %s", total, ex)
	if ex.Found != total || ex.Duplicates != 0 || ex.Records != total {
		t.Errorf("want exactly %d records: %s", total, ex)
	}

	type stream struct {
		topic     string
		partition int
		key       string
	}
	last := map[stream]int64{}
	seqs := map[[2]int64]map[int64]bool{} // (scope, k) → seqs seen
	inversions := 0
	for _, r := range recs {
		var k, seq int64
		var scope rtm.Scope
		if r.Value.Scope == "event" {
			var d struct{ K, S int64 }
			if r.Value.Data == nil || json.Unmarshal([]byte(*r.Value.Data), &d) != nil {
				t.Fatalf("event record without load data: %s", r.Raw)
			}
			k, seq, scope = d.K, d.S, rtm.ScopeEvent
		} else {
			k, seq = r.Value.MID>>32-1, r.Value.MID&0xffffffff
			id, _ := integration.RecordID(&r) // checked by e.check
			scope = id.Scope
			if r.Value.To != rtmsim.LoadIDBase+k {
				t.Fatalf("record %s: mid %d does not match to %d", r.Raw, r.Value.MID, r.Value.To)
			}
		}
		s := stream{r.Topic, r.Partition, r.Key}
		if prev, ok := last[s]; ok && seq <= prev {
			inversions++
			if inversions <= 5 {
				t.Errorf("%s/%d key %s: seq %d after %d", r.Topic, r.Partition, r.Key, seq, prev)
			}
		}
		last[s] = seq
		sk := [2]int64{int64(scope), k}
		if seqs[sk] == nil {
			seqs[sk] = map[int64]bool{}
		}
		seqs[sk][seq] = true
	}
	gaps := 0
	for sk, set := range seqs {
		for s := int64(1); s <= int64(len(set)); s++ {
			if !set[s] {
				gaps++
				t.Errorf("scope %d key %d: seq %d missing (have %d)", sk[0], sk[1], s, len(set))
				break
			}
		}
	}
	t.Logf("order: %d streams (topic, partition, key), %d inversions, %d (scope, key) sequences, %d with gaps", len(last), inversions, len(seqs), gaps)
}

// TestLinkDropReconnect: the gateway drops the link three times under
// steady load; each time the daemon reconnects and re-applies the listen
// state, and every push answered OK is in Kafka.
func TestLinkDropReconnect(t *testing.T) {
	e := setup(t, rtmsim.Config{}, nil)
	d := e.Start(nil)
	want := integration.AllFlags()
	want.GIDs = []int64{77}
	e.ExpectResult(e.Control(`{"id":"ld-1","op":"add","gids":[77]}`), want)

	ch := generate(t, e.Sim, rtmsim.LoadConfig{Rate: 1000, Duration: 6 * time.Second, Keys: 20, WaitListener: true, Seed: 5})
	for i := 0; i < 3; i++ {
		base := e.Ledger.Answered()
		if err := integration.WaitFor(ctxFor(t, 20*time.Second), "traffic", func() bool { return e.Ledger.Answered() >= base+300 }); err != nil {
			t.Fatal(err)
		}
		accepted := e.Sim.Stats().Accepted
		n := e.Sim.DropAll()
		if err := integration.WaitFor(ctxFor(t, 20*time.Second), "reconnect", func() bool {
			st := e.Sim.Stats()
			return st.Accepted > accepted && st.Listening == 1 && st.Conns == 1
		}); err != nil {
			t.Fatalf("drop %d: %v (stats %+v)", i+1, err, e.Sim.Stats())
		}
		integration.WaitListenState(t, e.Sim, want)
		t.Logf("drop %d: closed %d connection(s); reconnected with listen state %+v", i+1, n, integration.NormListen(e.Sim.ListenStates()[0]))
	}
	res := waitGen(t, ch, 60*time.Second)
	ex, _ := e.Check()
	st := e.Sim.Stats()
	t.Logf("sent %d pushes, sim: answered=%d unanswered(at drops)=%d overdue=%d; %s", st.Sent, st.Answered, st.Unanswered, st.Overdue, ex)
	if res.Errored != 0 || res.Answered == 0 {
		t.Errorf("load result %+v", res)
	}
	if ex.Duplicates != 0 {
		t.Errorf("%d duplicates (the simulator does not redeliver here), e.g. %v", ex.Duplicates, ex.DupSample)
	}
	rc, ok, err := d.Metric(ctxFor(t, 5*time.Second), "rtm2kafka_rtm_reconnects_total")
	if err != nil || !ok || rc < 3 {
		t.Errorf("rtm2kafka_rtm_reconnects_total = %v (found %v, %v), want ≥ 3", rc, ok, err)
	}
	t.Logf("rtm2kafka_rtm_reconnects_total %v", rc)
}

// TestMalformedToDeadLetters: each kind of malformed push is answered with
// an error and written to <prefix>.deadletter; valid traffic around it is
// unaffected.
func TestMalformedToDeadLetters(t *testing.T) {
	e := setup(t, rtmsim.Config{}, nil)
	d := e.Start(nil)
	ch := generate(t, e.Sim, rtmsim.LoadConfig{Rate: 500, Total: 1000, Keys: 10, Seed: 7})
	kinds := []string{rtmsim.MalformedMissingField, rtmsim.MalformedWrongType, rtmsim.MalformedGarbagePayload}
	for _, k := range kinds {
		base := e.Ledger.Answered()
		if err := integration.WaitFor(ctxFor(t, 20*time.Second), "traffic", func() bool { return e.Ledger.Answered() >= base+100 }); err != nil {
			t.Fatal(err)
		}
		if n, err := e.Sim.SendMalformed(k); err != nil || n != 1 {
			t.Fatalf("SendMalformed(%s): %d, %v", k, n, err)
		}
	}
	res := waitGen(t, ch, 60*time.Second)
	if err := integration.WaitFor(ctxFor(t, 20*time.Second), "malformed answers", func() bool {
		st := e.Sim.Stats()
		return st.MalformedErrored+st.MalformedOK+st.MalformedUnanswered == int64(len(kinds))
	}); err != nil {
		t.Fatal(err)
	}
	st := e.Sim.Stats()
	if st.MalformedErrored != int64(len(kinds)) {
		t.Errorf("malformed: %d answered with an error, %d OK, %d unanswered; want all %d errored",
			st.MalformedErrored, st.MalformedOK, st.MalformedUnanswered, len(kinds))
	}
	if res.Answered != int64(res.Pushes) || res.Errored != 0 {
		t.Errorf("valid traffic: %+v", res)
	}
	ex, _ := e.Check()
	t.Logf("valid: sent %d, %s", res.Pushes, ex)
	if ex.Found != res.Pushes || ex.Duplicates != 0 || ex.Records != res.Pushes {
		t.Errorf("valid traffic not exact: %s", ex)
	}

	msgs, err := integration.ReadTopic(ctxFor(t, 30*time.Second), e.Brokers, integration.Router(t, e.Prefix).DeadLetterTopic())
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(kinds) {
		t.Errorf("%d dead letters, want %d", len(msgs), len(kinds))
	}
	for _, m := range msgs {
		var dl struct {
			Error  string `json:"error"`
			RawB64 []byte `json:"raw_b64"` // base64 in JSON
			At     int64  `json:"at"`
			Seq    *int64 `json:"seq"`
			Scope  string `json:"scope"`
		}
		if err := json.Unmarshal(m.Value, &dl); err != nil {
			t.Errorf("dead letter %q: %v", m.Value, err)
			continue
		}
		t.Logf("dead letter: error=%q raw=%d bytes at=%d scope=%q", dl.Error, len(dl.RawB64), dl.At, dl.Scope)
		if dl.Error == "" || len(dl.RawB64) < 16 || string(dl.RawB64[:4]) != "FPNN" || dl.At <= 0 || dl.Seq == nil {
			t.Errorf("dead letter incomplete: %s", m.Value)
		}
	}
	sst, err := d.Status(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if sst.Bridge.DeadLetters != uint64(len(kinds)) || sst.Link.State != "listening" {
		t.Errorf("daemon: dead_letters=%d link %s", sst.Bridge.DeadLetters, sst.Link.State)
	}
	t.Logf("malformed sent=%d errored=%d; dead letters in Kafka=%d; daemon dead_letters=%d", st.MalformedSent, st.MalformedErrored, len(msgs), sst.Bridge.DeadLetters)
}

// TestSIGTERMDrain: SIGTERM under load makes the daemon exit 0 within
// SHUTDOWN_TIMEOUT, and every push answered OK is in Kafka.
func TestSIGTERMDrain(t *testing.T) {
	e := setup(t, rtmsim.Config{}, nil)
	// Batches linger 100 ms, so a few hundred records are in flight at the
	// signal and the drain has real work to do.
	d := e.Start(map[string]string{"SHUTDOWN_TIMEOUT": "15s", "KAFKA_LINGER": "100ms"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan rtmsim.LoadResult, 1)
	go func() {
		res, _ := e.Sim.Generate(ctx, rtmsim.LoadConfig{Rate: 3000, Duration: 20 * time.Second, Keys: 50, Seed: 9})
		done <- res
	}()
	if err := integration.WaitFor(ctxFor(t, 20*time.Second), "traffic", func() bool { return e.Ledger.Answered() >= 2000 }); err != nil {
		t.Fatal(err)
	}
	pre, err := d.Status(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	before := e.Sim.Stats()
	start := time.Now()
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := d.Wait(ctxFor(t, 20*time.Second))
	took := time.Since(start)
	if err != nil || code != 0 {
		t.Fatalf("daemon exit %d after %v (%v), want 0 within SHUTDOWN_TIMEOUT", code, took, err)
	}
	if err := e.Sim.WaitConns(ctxFor(t, 10*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	cancel()
	res := <-done
	// Every push now has an outcome: the connection is gone.
	if err := integration.WaitFor(ctxFor(t, 10*time.Second), "outcomes", func() bool { return e.Sim.Stats().Pending == 0 }); err != nil {
		t.Fatal(err)
	}
	st := e.Sim.Stats()
	ex, _ := e.Check()
	t.Logf("SIGTERM after %d answered (%d pending in the simulator, %d records in the bridge's window just before); exit 0 in %v",
		before.Answered, before.Pending, pre.Bridge.InFlightRecords, took.Round(time.Millisecond))
	if pre.Bridge.InFlightRecords == 0 {
		t.Error("nothing in flight just before the signal: the drain was not exercised")
	}
	t.Logf("sent %d (generator %d), sim answered=%d overdue=%d unanswered=%d; %s", st.Sent, res.Pushes, st.Answered, st.Overdue, st.Unanswered, ex)
	if st.Errored != 0 {
		t.Errorf("%d error answers", st.Errored)
	}
	if !strings.Contains(d.Log(), "every in-flight push was answered") {
		t.Error(`daemon log lacks "every in-flight push was answered"`)
	}
}

// TestEncryptedLink: with the gateway's public key (RTM_SERVER_KEY) the
// daemon encrypts the link and pushes flow.
func TestEncryptedLink(t *testing.T) {
	key, err := rtm.GenerateServerKey("secp256k1", nil)
	if err != nil {
		t.Fatal(err)
	}
	pemPath := filepath.Join(t.TempDir(), "gateway.pem")
	if err := os.WriteFile(pemPath, key.PublicPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	e := setup(t, rtmsim.Config{ServerKey: key}, nil)
	d := e.Start(map[string]string{"RTM_SERVER_KEY": pemPath, "RTM_AES_BITS": "128"})
	res := waitGen(t, generate(t, e.Sim, rtmsim.LoadConfig{Total: 500, Keys: 10, Seed: 3, Binary: 0.5}), 60*time.Second)
	if res.Answered != 500 {
		t.Errorf("want 500 answered: %+v", res)
	}
	ex, _ := e.Check()
	t.Logf("encrypted: sent %d, %s", res.Pushes, ex)
	if ex.Found != 500 || ex.Duplicates != 0 {
		t.Errorf("not exact: %s", ex)
	}
	if !strings.Contains(d.Log(), `"encrypted":true`) {
		t.Error(`daemon log lacks "encrypted":true`)
	}
}
