package integration_test

import (
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/integration"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// TestKafkaOutage: with a private broker killed for a while under load, the
// bridge stops answering, its window stays bounded, the RTM link stays up;
// once the broker is back everything answered is in Kafka. Without a spool,
// pushes that wait out the outage are answered after the simulator's
// AnswerTimeout (overdue): counted and reported, not a failure.
func TestKafkaOutage(t *testing.T) {
	const window = 500
	pk := integration.StartPrivateKafka(t)
	e := setup(t, rtmsim.Config{AnswerTimeout: 5 * time.Second, LateGrace: 90 * time.Second}, pk.Brokers)
	d := e.Start(map[string]string{"BRIDGE_WINDOW_RECORDS": "500", "SHUTDOWN_TIMEOUT": "10s"})

	const rate, total = 200, 4000 // 20 s of load
	ch := generate(t, e.Sim, rtmsim.LoadConfig{Rate: rate, Total: total, Keys: 20, Seed: 11})
	if err := integration.WaitFor(ctxFor(t, 20*time.Second), "traffic", func() bool { return e.Ledger.Answered() >= 400 }); err != nil {
		t.Fatal(err)
	}
	if err := pk.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	atKill := e.Sim.Stats()
	t.Logf("broker killed after %d answered", atKill.Answered)

	// Observe the outage for 10 s.
	var maxInflight int
	var answeredAt1s int64 = -1
	var last integration.Status
	for time.Since(killed) < 10*time.Second {
		st, err := d.Status(ctxFor(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		last = st
		maxInflight = max(maxInflight, st.Bridge.InFlightRecords)
		if st.Bridge.InFlightRecords > window {
			t.Errorf("inflight_records %d > BRIDGE_WINDOW_RECORDS %d", st.Bridge.InFlightRecords, window)
		}
		if st.Link.State != "listening" {
			t.Errorf("%v into the outage the RTM link is %s (%s), want listening", time.Since(killed).Round(time.Millisecond), st.Link.State, st.Link.Reason)
		}
		if answeredAt1s < 0 && time.Since(killed) > time.Second {
			answeredAt1s = e.Sim.Stats().Answered + e.Sim.Stats().Overdue
		}
		time.Sleep(250 * time.Millisecond) // sampling period of the observation
	}
	during := e.Sim.Stats()
	t.Logf("after 10 s of outage: sim pending=%d answered=%d (at kill %d); bridge inflight=%d (max %d) link=%s",
		during.Pending, during.Answered, atKill.Answered, last.Bridge.InFlightRecords, maxInflight, last.Link.State)
	if answeredAt1s >= 0 && during.Answered+during.Overdue > answeredAt1s {
		t.Errorf("answers went on during the outage: %d a second in, %d at its end", answeredAt1s, during.Answered+during.Overdue)
	}
	if last.Bridge.InFlightRecords <= 0 || maxInflight > window {
		t.Errorf("inflight_records %d (max %d), want in 1..%d", last.Bridge.InFlightRecords, maxInflight, window)
	}
	if during.Pending <= int64(window) {
		t.Errorf("sim pending %d, want more than the window (%d): the gateway should be back-pressured", during.Pending, window)
	}

	if err := pk.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("broker back after %v", time.Since(killed).Round(time.Millisecond))
	res := waitGen(t, ch, 120*time.Second)
	ex, _ := e.Check()
	st := e.Sim.Stats()
	t.Logf("sent %d: answered in time %d, overdue (answered after %v) %d, unanswered %d, errored %d; %s",
		st.Sent, st.Answered, 5*time.Second, st.Overdue, st.Unanswered, st.Errored, ex)
	if res.Errored != 0 || res.Unanswered != 0 {
		t.Errorf("after the outage every push should be answered OK (late is fine): %+v", res)
	}
	if ex.Found != total {
		t.Errorf("want all %d in Kafka: %s", total, ex)
	}
	if ex.Duplicates > 0 {
		t.Logf("%d duplicates from kafka-go retries (at least once), e.g. %v", ex.Duplicates, ex.DupSample)
	}
}
