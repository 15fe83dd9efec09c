package integration_test

// Shared machinery of the fault suite (faults_test.go, build tag faults)
// and its short variant (faults_short_test.go): one fault run under steady
// load with exact loss accounting and a leak check, a random control
// command generator with its model, and the private broker's pid.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/integration"
	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// faultAnswerTimeout is the simulator's answer timeout in every fault run:
// the gateway's 5 s.
const faultAnswerTimeout = 5 * time.Second

// Leak-check tolerances: after the load has stopped and the daemon has
// settled, its goroutines and resident memory may exceed the baseline taken
// after the warm-up by this much (connections redialled after a fault,
// buffers, the Go heap's slack) and no more. With the spool, the first
// spill creates the drainer's kafka.Writer, which keeps one goroutine per
// data partition (16 topics × 3) plus its connections until exit — seen in
// a SIGQUIT dump as kafka-go partitionWriter.writeBatches — so a spool run
// may have up to faultSpoolWriterGoroutines more, once. The fast path's
// kafka.Writer likewise starts a partition goroutine the first time it
// writes to a partition, and the random warm-up need not have touched all
// 16 × 3 of them, so those are allowed too (faultWriterGoroutines): a
// leak grows with faults and time, these are bounded by the partition count.
const (
	faultWriterGoroutines      = 16 * 3
	faultGoroutineSlack        = 40 + faultWriterGoroutines
	faultSpoolWriterGoroutines = 2 * 16 * 3
	faultRSSSlack              = 256 << 20
)

// faultCase is one fault scenario: a load against a fresh daemon while
// inject does its damage.
type faultCase struct {
	Name      string
	Spool     bool     // run the daemon with SPOOL_DIR in a temp dir
	Brokers   []string // nil: the shared broker
	Rate      float64  // pushes per second
	Duration  time.Duration
	Redeliver bool // the simulator redelivers unanswered pushes (gateway-like)
	// WaitListener makes the generator wait for the first listener; later
	// gaps (a dead bridge, a dropped link) are counted as no_listener, not
	// waited out (rtmsim.LoadConfig.WaitListener).
	WaitListener bool
	Env          map[string]string // extra daemon environment
	// Inject runs while the load runs (it starts once the load flows) and
	// returns a note for the table; it may replace f.D (a restarted
	// daemon).
	Inject func(t *testing.T, f *faultRun) string
	// Connection faults (link drops, daemon kills) legitimately leave pushes
	// unanswered; other faults must not.
	AllowUnanswered bool
}

// faultRun is the state of a running fault case, for its Inject.
type faultRun struct {
	E        *integration.Env
	D        *integration.Daemon
	SpoolDir string
	Extra    map[string]string // the daemon environment beyond E.DaemonEnv
}

// Restart starts a new daemon with the same environment (same prefix and,
// with the spool, the same SPOOL_DIR) and makes it f.D.
func (f *faultRun) Restart() *integration.Daemon {
	f.D = f.E.Start(f.Extra)
	return f.D
}

// faultRow is one line of the fault table.
type faultRow struct {
	Name        string
	Spool       bool
	Sent        int64 // pushes sent by the simulator (redeliveries included)
	Answered    int64 // answered OK within the answer timeout
	Overdue     int64 // answered after it
	Unanswered  int64 // never answered (connection died, or LateGrace passed)
	Errored     int64
	Redelivered int64
	InKafka     int // distinct data records in Kafka
	Duplicates  int
	Lost        int // answered OK but not in Kafka: must be 0
	GoBefore    float64
	GoAfter     float64
	RSSBefore   float64
	RSSAfter    float64
	Took        time.Duration
	Note        string
}

// logRow logs r as a "FAULTROW" line that scripts/faults.sh turns into a
// Markdown table row.
func logRow(t *testing.T, r faultRow) {
	t.Helper()
	spool := "off"
	if r.Spool {
		spool = "on"
	}
	t.Logf("FAULTROW | %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %.0f → %.0f | %.1f → %.1f | %s | %s |",
		r.Name, spool, r.Sent, r.Answered, r.Overdue, r.Unanswered, r.Errored, r.Redelivered, r.InKafka, r.Duplicates, r.Lost,
		r.GoBefore, r.GoAfter, r.RSSBefore/(1<<20), r.RSSAfter/(1<<20), r.Took.Round(time.Second), r.Note)
}

// leakSample reads the daemon's goroutines and resident memory.
func leakSample(t *testing.T, d *integration.Daemon) (gor, rss float64) {
	t.Helper()
	ctx := ctxFor(t, 5*time.Second)
	g, ok1, err1 := d.Metric(ctx, "go_goroutines")
	r, ok2, err2 := d.Metric(ctx, "process_resident_memory_bytes")
	if err1 != nil || err2 != nil || !ok1 || !ok2 {
		t.Fatalf("leak sample: go_goroutines found=%v err=%v, process_resident_memory_bytes found=%v err=%v", ok1, err1, ok2, err2)
	}
	return g, r
}

// settledSample waits until the daemon's goroutine count has not changed
// for a second (sampled at most every 250 ms, at most 15 s) and returns
// the last sample; a count that never settles is returned as it is (the
// leak check judges it).
func settledSample(t *testing.T, d *integration.Daemon) (gor, rss float64) {
	t.Helper()
	last, since, sampled := -1.0, time.Now(), time.Time{}
	_ = integration.WaitFor(ctxFor(t, 15*time.Second), "a settled goroutine count", func() bool {
		if time.Since(sampled) < 250*time.Millisecond {
			return false // a scrape costs the daemon goroutines of its own: not too often
		}
		sampled = time.Now()
		gor, rss = leakSample(t, d)
		if gor != last {
			last, since = gor, sampled
		}
		return time.Since(since) >= time.Second
	}) // not settled within 15 s: the sample as it is
	return gor, rss
}

// spoolEmpty waits until d's spool holds nothing and d is not spilling.
func spoolEmpty(t *testing.T, d *integration.Daemon, timeout time.Duration) {
	t.Helper()
	err := integration.WaitFor(ctxFor(t, timeout), "the spool to drain", func() bool {
		recs, ok1, err1 := d.Metric(context.Background(), "rtm2kafka_spool_records")
		sp, ok2, err2 := d.Metric(context.Background(), "rtm2kafka_spool_spilling")
		return err1 == nil && err2 == nil && ok1 && ok2 && recs == 0 && sp == 0
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runFault runs fc: a fresh simulator and daemon, a baseline leak sample,
// the load with fc.Inject alongside, then the settle, the leak check and
// the exactness check. It fails the test when anything answered OK is not
// in Kafka, when pushes errored, when pushes went unanswered without a
// connection fault, when a spool run answered late, or on a leak; it
// returns the table row.
func runFault(t *testing.T, fc faultCase) faultRow {
	t.Helper()
	start := time.Now()
	e := setup(t, rtmsim.Config{AnswerTimeout: faultAnswerTimeout, LateGrace: 60 * time.Second, Redeliver: fc.Redeliver}, fc.Brokers)
	f := &faultRun{E: e, Extra: map[string]string{"LOG_LEVEL": "info"}}
	for k, v := range fc.Env {
		f.Extra[k] = v
	}
	if fc.Spool {
		f.SpoolDir = t.TempDir()
		f.Extra["SPOOL_DIR"] = f.SpoolDir
		f.Extra["SPOOL_ACK_BUDGET"] = "2s"
	}
	f.D = e.Start(f.Extra)
	// Warm-up, so the baseline has the connections and pools steady traffic
	// needs: 2,000 pushes of every scope and kind to targets above 2^53
	// (LargeIDs), whose ids cannot collide with the main load's. It waits
	// for a listener: an HA bridge is ready as a standby, before it listens
	// (without the wait the first warm-up messages found no listener, which
	// the handover row then counted as a gap).
	waitGen(t, generate(t, e.Sim, rtmsim.LoadConfig{Rate: 1000, Total: 2000, Keys: 50, Seed: 1, LargeIDs: true, WaitListener: true}), time.Minute)
	gor0, rss0 := settledSample(t, f.D)

	seed := uint64(len(fc.Name))*7919 + uint64(time.Now().UnixNano()%1000)
	t.Logf("load: %.0f/s for %v, seed %d", fc.Rate, fc.Duration, seed)
	ch := generate(t, e.Sim, rtmsim.LoadConfig{Rate: fc.Rate, Duration: fc.Duration, Keys: 50, Seed: seed,
		Binary: 0.1, WaitListener: fc.WaitListener})
	if err := integration.WaitFor(ctxFor(t, 20*time.Second), "traffic", func() bool { return e.Ledger.Answered() >= 500 }); err != nil {
		t.Fatal(err)
	}
	note := ""
	if fc.Inject != nil {
		note = fc.Inject(t, f)
	}
	res := waitGen(t, ch, 3*time.Minute)
	if err := integration.WaitFor(ctxFor(t, 90*time.Second), "every push to have an outcome", func() bool { return e.Sim.Stats().Pending == 0 }); err != nil {
		t.Fatalf("%v (stats %+v)", err, e.Sim.Stats())
	}
	if fc.Spool {
		spoolEmpty(t, f.D, 120*time.Second)
	}
	gor1, rss1 := settledSample(t, f.D)
	ex, _ := e.Check()
	st := e.Sim.Stats()
	row := faultRow{Name: fc.Name, Spool: fc.Spool, Sent: st.Sent, Answered: st.Answered, Overdue: st.Overdue,
		Unanswered: st.Unanswered, Errored: st.Errored, Redelivered: st.Redelivered,
		InKafka: ex.Records - ex.Duplicates, Duplicates: ex.Duplicates, Lost: ex.Lost,
		GoBefore: gor0, GoAfter: gor1, RSSBefore: rss0, RSSAfter: rss1, Took: time.Since(start), Note: note}
	t.Logf("generator %+v; %s", res, ex)
	logRow(t, row)

	// Lost > 0 already failed the test in e.Check.
	if st.Errored != 0 {
		t.Errorf("%d valid pushes answered with an error", st.Errored)
	}
	if !fc.AllowUnanswered && st.Unanswered != 0 {
		t.Errorf("%d pushes never answered, though no connection was cut", st.Unanswered)
	}
	if fc.Spool && st.Overdue != 0 {
		t.Errorf("spool on: %d pushes answered after the %v answer timeout, want 0", st.Overdue, faultAnswerTimeout)
	}
	if ex.Answered == 0 || ex.Found != ex.Answered {
		t.Errorf("exactness: %s", ex)
	}
	slack := float64(faultGoroutineSlack)
	if fc.Spool {
		slack += faultSpoolWriterGoroutines
	}
	if gor1 > gor0+slack {
		t.Errorf("goroutine leak? %v after the warm-up, %v after the load settled (slack %v); where they are:\n%s",
			gor0, gor1, slack, goroutineDump(t, f.D))
	}
	if rss1 > rss0+faultRSSSlack {
		t.Errorf("memory leak? RSS %.1f MiB after start, %.1f MiB after the load settled", rss0/(1<<20), rss1/(1<<20))
	}
	return row
}

// goroutineDump makes the daemon print its goroutines (SIGQUIT: the Go
// runtime dumps every stack to stderr, the daemon's log, and exits) and
// returns them counted by the function that created them, most first.
func goroutineDump(t *testing.T, d *integration.Daemon) string {
	t.Helper()
	if err := d.Signal(syscall.SIGQUIT); err != nil {
		return err.Error()
	}
	if _, err := d.Wait(ctxFor(t, 10*time.Second)); err != nil {
		return err.Error()
	}
	log := d.Log()
	i := strings.Index(log, "\ngoroutine ")
	if i < 0 {
		return "no goroutine dump in the log"
	}
	counts := map[string]int{}
	for _, g := range strings.Split(log[i+1:], "\n\n") {
		if !strings.HasPrefix(g, "goroutine ") {
			continue
		}
		key, creator := "", ""
		for _, l := range strings.Split(g, "\n")[1:] {
			switch {
			case strings.HasPrefix(l, "created by "):
				creator, _, _ = strings.Cut(strings.TrimPrefix(l, "created by "), " in goroutine")
			case key == "" && l != "" && l[0] != '\t' && l[0] != ' ' && !strings.HasPrefix(l, "runtime.") &&
				!strings.HasPrefix(l, "sync.") && !strings.HasPrefix(l, "internal/"):
				key, _, _ = strings.Cut(l, "(0x")
			}
		}
		key = creator + " → " + key
		counts[key]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return counts[keys[a]] > counts[keys[b]] })
	var sb strings.Builder
	for j, k := range keys {
		if j == 20 {
			break
		}
		fmt.Fprintf(&sb, "%5d  %s\n", counts[k], k)
	}
	return sb.String()
}

// dropLink drops the RTM link n times under load. Drops come in bursts of
// three, 200–400 ms apart (each after the daemon is listening again); after
// a burst the link is left up for rtm.FlashDisconnect plus a margin, so the
// daemon's anti-flap back-off (a connection that listened for less than
// that counts as a failed attempt; after three the back-off grows towards
// 30 s) resets and the next burst is reconnected at once again.
func dropLink(t *testing.T, f *faultRun, n int) string {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(n), 99))
	start := time.Now()
	for i := 0; i < n; i++ {
		pause := time.Duration(200+r.IntN(201)) * time.Millisecond
		if i%3 == 0 && i > 0 {
			pause += rtm.FlashDisconnect + 300*time.Millisecond
		}
		time.Sleep(pause) // the drop cadence
		accepted := f.E.Sim.Stats().Accepted
		f.E.Sim.DropAll()
		if err := integration.WaitFor(ctxFor(t, 20*time.Second), "reconnect", func() bool {
			st := f.E.Sim.Stats()
			return st.Accepted > accepted && st.Listening == 1 && st.Conns == 1
		}); err != nil {
			t.Fatalf("drop %d: %v (stats %+v)", i+1, err, f.E.Sim.Stats())
		}
	}
	rc, _, err := f.D.Metric(ctxFor(t, 5*time.Second), "rtm2kafka_rtm_reconnects_total")
	if err != nil || rc < float64(n) {
		t.Errorf("rtm2kafka_rtm_reconnects_total = %v (%v), want ≥ %d", rc, err, n)
	}
	return fmt.Sprintf("%d drops in %v (bursts of 3), %v reconnects", n, time.Since(start).Round(100*time.Millisecond), rc)
}

// ctlEvents are the event names random control commands draw from (ids
// come from 1..30), so adds and removes overlap.
var ctlEvents = [...]string{"login", "logout", "join", "leave", "kick"}

// genCommand returns one random control command with id "c-<i>" and
// whether it is meant to be valid. Valid: add, remove, set, set_all with
// small random id sets; invalid: bad JSON, not an object, unknown op or
// field, negative, zero, fractional or string ids, wrong types, a missing
// or empty id or op, a repeated field, too many ids, lists in set_all,
// flags in add, an add with no ids, data after the object.
func genCommand(r *rand.Rand, i int) ([]byte, bool) {
	id := "c-" + strconv.Itoa(i)
	ids := func() []int64 {
		out := make([]int64, r.IntN(4))
		for j := range out {
			out[j] = 1 + r.Int64N(30)
		}
		return out
	}
	lists := func(m map[string]any, nonEmpty bool) {
		for {
			for _, k := range []string{"gids", "rids", "uids"} {
				if r.IntN(2) == 0 {
					m[k] = ids()
				}
			}
			if r.IntN(3) == 0 {
				evs := make([]string, r.IntN(3))
				for j := range evs {
					evs[j] = ctlEvents[r.IntN(len(ctlEvents))]
				}
				m["events"] = evs
			}
			if !nonEmpty {
				return
			}
			for _, k := range []string{"gids", "rids", "uids", "events"} {
				if v, ok := m[k]; ok && jsonLen(v) > 0 {
					return
				}
			}
		}
	}
	enc := func(m map[string]any) []byte {
		b, err := json.Marshal(m)
		if err != nil {
			panic(err) // maps of strings, ints, bools and slices always encode
		}
		return b
	}
	switch p := r.IntN(100); {
	case p < 22:
		m := map[string]any{"id": id, "op": "add"}
		lists(m, true)
		return enc(m), true
	case p < 37:
		m := map[string]any{"id": id, "op": "remove"}
		lists(m, true)
		return enc(m), true
	case p < 47:
		m := map[string]any{"id": id, "op": "set"}
		lists(m, false)
		return enc(m), true
	case p < 60:
		m := map[string]any{"id": id, "op": "set_all"}
		for len(m) == 2 {
			for _, k := range []string{"p2p", "group", "room", "ev"} {
				if r.IntN(2) == 0 {
					m[k] = r.IntN(2) == 0
				}
			}
		}
		return enc(m), true
	}
	// Invalid ones.
	valid := enc(map[string]any{"id": id, "op": "add", "gids": []int64{1 + r.Int64N(30)}})
	switch r.IntN(18) {
	case 0:
		return valid[:1+r.IntN(len(valid)-1)], false // truncated JSON
	case 1:
		return []byte(`[1,2,3]`), false
	case 2:
		return []byte(fmt.Sprintf(`{"id":%q,"op":"frobnicate","gids":[1]}`, id)), false
	case 3:
		return []byte(fmt.Sprintf(`{"id":%q,"op":"add","gids":[-%d]}`, id, 1+r.IntN(30))), false
	case 4:
		return []byte(fmt.Sprintf(`{"id":%q,"op":"add","uids":[0]}`, id)), false
	case 5:
		return []byte(fmt.Sprintf(`{"id":%q,"op":"add","rids":[1.5]}`, id)), false
	case 6:
		return []byte(fmt.Sprintf(`{"id":%q,"op":"add","gids":["7"]}`, id)), false
	case 7:
		return []byte(fmt.Sprintf(`{"id":%q,"op":"set_all","p2p":"yes"}`, id)), false
	case 8:
		return []byte(fmt.Sprintf(`{"id":%d,"op":"add","gids":[1]}`, i)), false // id of the wrong type
	case 9:
		return []byte(`{"op":"add","gids":[1]}`), false
	case 10:
		return []byte(fmt.Sprintf(`{"id":%q,"gids":[1]}`, id)), false
	case 11:
		return []byte(fmt.Sprintf(`{"id":%q,"op":"add","gids":[1],"gids":[2]}`, id)), false
	case 12:
		if r.IntN(4) == 0 {
			var sb strings.Builder
			fmt.Fprintf(&sb, `{"id":%q,"op":"add","uids":[`, id)
			for j := 1; j <= bridge.MaxCommandIDs+1; j++ {
				if j > 1 {
					sb.WriteByte(',')
				}
				sb.WriteString(strconv.Itoa(j))
			}
			sb.WriteString("]}")
			return []byte(sb.String()), false
		}
		return []byte(fmt.Sprintf(`{"id":%q,"op":"add","gids":[1],"colour":"red"}`, id)), false
	case 13:
		return []byte(fmt.Sprintf(`{"id":%q,"op":"set_all","p2p":true,"gids":[1]}`, id)), false
	case 14:
		return []byte(fmt.Sprintf(`{"id":%q,"op":"add","p2p":true}`, id)), false
	case 15:
		return []byte(fmt.Sprintf(`{"id":%q,"op":"add","gids":[]}`, id)), false
	case 16:
		return append(valid, []byte(` {}`)...), false
	default:
		return []byte(`{"id":"","op":"add","gids":[1]}`), false
	}
}

func jsonLen(v any) int {
	switch l := v.(type) {
	case []int64:
		return len(l)
	case []string:
		return len(l)
	}
	return 0
}

// controlFlood produces n random commands (seeded) to the control topic in
// order, waits for their n results, and checks every result and the final
// listen state — in the last result, the daemon's /status and the
// simulator's connection — against the model: [rtm.ListenState.Apply] over
// the commands [bridge.ParseCommand] accepts, via [bridge.Command.Change].
func controlFlood(t *testing.T, f *faultRun, n int, seed uint64) string {
	t.Helper()
	e := f.E
	r := rand.New(rand.NewPCG(seed, 7))
	st0, err := f.D.Status(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	model := st0.Listen.Clone()
	if !integration.SameListen(model, integration.AllFlags()) {
		t.Fatalf("initial listen state %+v, want the default", integration.NormListen(model))
	}
	base := st0.Bridge.ControlApplied + st0.Bridge.ControlRejected
	msgs := make([]*kgo.Record, n)
	want := make([]rtm.ListenState, n) // the model's state after command i
	wantOK := make([]bool, n)
	wantID := make([]string, n)
	accepted, mismatched := 0, 0
	for i := range msgs {
		val, valid := genCommand(r, i)
		msgs[i] = &kgo.Record{Value: val}
		cmd, err := bridge.ParseCommand(val)
		if (err == nil) != valid {
			mismatched++
			if mismatched <= 5 {
				t.Errorf("command %d %.80s: generated as valid=%v, ParseCommand says %v", i, val, valid, err)
			}
		}
		if err == nil {
			model = model.Apply(cmd.Change(model))
			accepted++
		}
		want[i], wantOK[i], wantID[i] = model, err == nil, cmd.ID
	}
	topic := integration.Router(t, e.Prefix).ControlTopic()
	if err := integration.WaitFor(ctxFor(t, 20*time.Second), "the control topic", func() bool {
		p, err := testkit.Partitions(context.Background(), e.Brokers, topic)
		return err == nil && len(p) == 1
	}); err != nil {
		t.Fatal(err)
	}
	// One partition, one idempotent producer: the commands land in order.
	cl := testkit.ClientFor(t, e.Brokers, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	produced := time.Now()
	for i := 0; i < n; i += 200 {
		if err := cl.ProduceSync(ctxFor(t, 60*time.Second), msgs[i:min(i+200, n)]...).FirstErr(); err != nil {
			t.Fatalf("produce commands %d..: %v", i, err)
		}
	}
	var last integration.Status
	if err := integration.WaitFor(ctxFor(t, 5*time.Minute), fmt.Sprintf("%d control results", n), func() bool {
		st, err := f.D.Status(context.Background())
		last = st
		return err == nil && st.Bridge.ControlApplied+st.Bridge.ControlRejected >= base+uint64(n)
	}); err != nil {
		t.Fatalf("%v: applied=%d rejected=%d", err, last.Bridge.ControlApplied, last.Bridge.ControlRejected)
	}
	took := time.Since(produced)
	res, err := integration.ReadTopic(ctxFor(t, 60*time.Second), e.Brokers, integration.Router(t, e.Prefix).ControlResultsTopic())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != n {
		t.Fatalf("%d results, want %d", len(res), n)
	}
	okN, bad := 0, 0
	var lastRes bridge.Result
	for j, m := range res {
		var rr bridge.Result
		if err := json.Unmarshal(m.Value, &rr); err != nil {
			t.Fatalf("result %q: %v", m.Value, err)
		}
		lastRes = rr
		if rr.OK {
			okN++
		}
		i := int(rr.Offset)
		if i != j || rr.ID != wantID[i] || rr.OK != wantOK[i] || !integration.SameListen(rr.Listen, want[i]) {
			bad++
			if bad <= 5 {
				t.Errorf("result %d: offset %d id %q ok=%v error=%q listen %+v; want offset %d id %q ok=%v listen %+v",
					j, rr.Offset, rr.ID, rr.OK, rr.Error, integration.NormListen(rr.Listen), j, wantID[min(j, n-1)], wantOK[min(j, n-1)], integration.NormListen(want[min(j, n-1)]))
			}
		}
	}
	final := want[n-1]
	if !integration.SameListen(lastRes.Listen, final) {
		t.Errorf("last result's listen %+v, model %+v", integration.NormListen(lastRes.Listen), integration.NormListen(final))
	}
	st, err := f.D.Status(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !integration.SameListen(st.Listen, final) {
		t.Errorf("daemon /status listen %+v, model %+v", integration.NormListen(st.Listen), integration.NormListen(final))
	}
	integration.WaitListenState(t, e.Sim, final)
	if sts := e.Sim.ListenStates(); len(sts) != 1 || !integration.SameListen(sts[0], final) {
		t.Errorf("simulator listen states %+v, model %+v", sts, integration.NormListen(final))
	}
	applied := st.Bridge.ControlApplied - st0.Bridge.ControlApplied
	rejected := st.Bridge.ControlRejected - st0.Bridge.ControlRejected
	if okN != accepted || int(applied) != accepted || int(rejected) != n-accepted {
		t.Errorf("accepted: model %d, results ok %d, daemon applied %d rejected %d (n %d)", accepted, okN, applied, rejected, n)
	}
	t.Logf("control: %d commands in %v (%.0f/s): model accepted %d rejected %d; results ok %d; %d result mismatches; final %+v",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), accepted, n-accepted, okN, bad, integration.NormListen(final))
	return fmt.Sprintf("%d commands (%d accepted, %d rejected) in %v; results, /status, simulator = model", n, accepted, n-accepted, took.Round(100*time.Millisecond))
}
