//go:build faults

package integration_test

// The fault suite (issue 5 §4, docs/reliability.md): every scenario runs
// under steady load with exact loss accounting — every push the simulator
// saw answered OK must be in Kafka — and a goroutine/memory check. Run it
// with `make faults` (scripts/faults.sh), which prints the table from the
// FAULTROW lines.

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/integration"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// spoolModes are the two ways the Kafka-side faults run.
var spoolModes = []struct {
	name string
	on   bool
}{{"spool-off", false}, {"spool-on", true}}

// TestFaultKafka: on a private broker, (1) the broker SIGKILLed under load
// and restarted 8 s later, and (4) a slow broker — its JVM SIGSTOPped for
// 3.5 s, three times — each with the spool off and on.
func TestFaultKafka(t *testing.T) {
	pk := integration.StartPrivateKafka(t)
	for _, m := range spoolModes {
		t.Run("broker-kill/"+m.name, func(t *testing.T) {
			runFault(t, faultCase{Name: "1 broker SIGKILL 8 s", Spool: m.on, Brokers: pk.Brokers,
				Rate: 400, Duration: 30 * time.Second,
				Inject: func(t *testing.T, f *faultRun) string {
					time.Sleep(3 * time.Second) // steady state first
					return killBroker(t, pk, 8*time.Second)
				}})
		})
	}
	for _, m := range spoolModes {
		t.Run("slow-broker/"+m.name, func(t *testing.T) {
			runFault(t, faultCase{Name: "4 broker SIGSTOP 3.5 s ×3", Spool: m.on, Brokers: pk.Brokers,
				Rate: 400, Duration: 25 * time.Second,
				Inject: func(t *testing.T, f *faultRun) string {
					return stallBroker(t, pk, 3, 3500*time.Millisecond)
				}})
		})
	}
}

// stallBroker freezes the private broker's JVM (SIGSTOP) for stall, n
// times, 3 s apart: a broker that is alive but does not answer.
func stallBroker(t *testing.T, pk *integration.PrivateKafka, n int, stall time.Duration) string {
	t.Helper()
	_, port, err := net.SplitHostPort(pk.Brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	pid, err := brokerPID(port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) // never leave it frozen
	for i := 0; i < n; i++ {
		time.Sleep(3 * time.Second) // normal service between stalls
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP broker %d: %v", pid, err)
		}
		time.Sleep(stall) // the stall itself
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatalf("SIGCONT broker %d: %v", pid, err)
		}
	}
	return fmt.Sprintf("broker pid %d frozen %d× %v", pid, n, stall)
}

// TestFaultLinkDrop: (2) the gateway drops the RTM link 50 times, every
// 200–400 ms, under load; the simulator redelivers what was cut off.
func TestFaultLinkDrop(t *testing.T) {
	runFault(t, faultCase{Name: "2 RTM link dropped ×50", Rate: 400, Duration: 50 * time.Second,
		Redeliver: true, WaitListener: true, AllowUnanswered: true,
		Inject: func(t *testing.T, f *faultRun) string { return dropLink(t, f, 50) }})
}

// TestFaultBridgeKill: (3) the daemon SIGKILLed under load and a new one
// started on the same prefix (and spool dir); the simulator redelivers what
// the dead one left unanswered.
func TestFaultBridgeKill(t *testing.T) {
	for _, m := range spoolModes {
		t.Run(m.name, func(t *testing.T) {
			runFault(t, faultCase{Name: "3 bridge SIGKILL + restart", Spool: m.on, Rate: 400, Duration: 25 * time.Second,
				Redeliver: true, WaitListener: true, AllowUnanswered: true,
				Inject: func(t *testing.T, f *faultRun) string {
					time.Sleep(3 * time.Second) // steady state first
					return killBridge(t, f)
				}})
		})
	}
}

// TestFaultMalformed: (5) malformed pushes of every kind interleaved with
// valid ones, every 50 ms for 15 s: each is answered with an error and
// dead-lettered; the valid traffic is exact (no duplicates, nothing extra).
func TestFaultMalformed(t *testing.T) {
	kinds := []string{rtmsim.MalformedMissingField, rtmsim.MalformedWrongType, rtmsim.MalformedGarbagePayload}
	var run *faultRun
	row := runFault(t, faultCase{Name: "5 malformed frames", Rate: 400, Duration: 20 * time.Second,
		Inject: func(t *testing.T, f *faultRun) string {
			run = f
			sent := 0
			for end := time.Now().Add(15 * time.Second); time.Now().Before(end); sent++ {
				if n, err := f.E.Sim.SendMalformed(kinds[sent%len(kinds)]); err != nil || n != 1 {
					t.Fatalf("SendMalformed: %d, %v", n, err)
				}
				time.Sleep(50 * time.Millisecond) // the interleaving period
			}
			return fmt.Sprintf("%d malformed", sent)
		}})
	checkMalformed(t, run, row)
}

// checkMalformed checks a malformed run after runFault: every malformed
// push error-answered and dead-lettered, valid traffic exact.
func checkMalformed(t *testing.T, f *faultRun, row faultRow) {
	t.Helper()
	if err := integration.WaitFor(ctxFor(t, 20*time.Second), "malformed answers", func() bool {
		st := f.E.Sim.Stats()
		return st.MalformedErrored+st.MalformedOK+st.MalformedUnanswered == st.MalformedSent
	}); err != nil {
		t.Fatal(err)
	}
	st := f.E.Sim.Stats()
	if st.MalformedErrored != st.MalformedSent || st.MalformedSent == 0 {
		t.Errorf("malformed: sent %d, error-answered %d, OK %d, unanswered %d", st.MalformedSent, st.MalformedErrored, st.MalformedOK, st.MalformedUnanswered)
	}
	dl, err := integration.ReadTopic(ctxFor(t, 30*time.Second), f.E.Brokers, integration.Router(t, f.E.Prefix).DeadLetterTopic())
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(dl)) != st.MalformedSent {
		t.Errorf("%d dead letters, want %d", len(dl), st.MalformedSent)
	}
	if row.Duplicates != 0 || int64(row.InKafka) != row.Answered+row.Overdue {
		t.Errorf("valid traffic not exact: %d in Kafka (%d duplicates), %d answered", row.InKafka, row.Duplicates, row.Answered)
	}
	t.Logf("malformed: sent %d, error-answered %d, dead letters %d", st.MalformedSent, st.MalformedErrored, len(dl))
}

// TestFaultControl: (6) 10,000 random control commands, valid and invalid,
// under load; every result, the final state in the last result, /status and
// the simulator's connection equal the model.
func TestFaultControl(t *testing.T) {
	runFault(t, faultCase{Name: "6 control commands ×10000", Rate: 300, Duration: 30 * time.Second,
		Inject: func(t *testing.T, f *faultRun) string { return controlFlood(t, f, 10000, 20261125) }})
}

// killBroker SIGKILLs the private broker pk, waits down, and starts it
// again on the same data.
func killBroker(t *testing.T, pk *integration.PrivateKafka, down time.Duration) string {
	t.Helper()
	if err := pk.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	time.Sleep(down) // the outage itself
	if err := pk.Start(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("broker SIGKILLed, serving again after %v", time.Since(killed).Round(100*time.Millisecond))
}

// killBridge SIGKILLs the daemon and starts a new one with the same prefix
// (and spool dir).
func killBridge(t *testing.T, f *faultRun) string {
	t.Helper()
	if err := f.D.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if code, err := f.D.Wait(ctxFor(t, 10*time.Second)); err != nil || code != 137 {
		t.Fatalf("killed daemon: exit %d, %v", code, err)
	}
	if err := f.E.Sim.WaitConns(ctxFor(t, 10*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	f.Restart()
	return fmt.Sprintf("bridge SIGKILLed, new one ready after %v", time.Since(killed).Round(100*time.Millisecond))
}

// brokerPID returns the pid of the broker JVM that kafka.sh started with
// the client listener on 127.0.0.1:port: the process whose command line is
// "… kafka.Kafka <props>" with that listener in <props>.
func brokerPID(port string) (int, error) {
	if port == "19092" {
		return 0, fmt.Errorf("brokerPID: refusing the shared broker's port %s", port)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("brokerPID: %w", err)
	}
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cl), "\x00")
		for i, a := range args {
			if a != "kafka.Kafka" || i+1 >= len(args) {
				continue
			}
			props, err := os.ReadFile(args[i+1])
			if err == nil && strings.Contains(string(props), "\nlisteners=PLAINTEXT://127.0.0.1:"+port+",") {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("brokerPID: no kafka.sh broker on port %s", port)
}

// haEnv is the environment of an HA fault row's bridges.
func haEnv(name string) map[string]string {
	return map[string]string{"BRIDGE_HA": "true", "BRIDGE_INSTANCE": name}
}

// startStandby starts bridge name in f's HA group and waits until it is a
// standby.
func startStandby(t *testing.T, f *faultRun, name string) *integration.Daemon {
	t.Helper()
	extra := map[string]string{}
	for k, v := range f.Extra {
		extra[k] = v
	}
	for k, v := range haEnv(name) {
		extra[k] = v
	}
	d := f.E.Start(extra)
	if err := integration.WaitFor(ctxFor(t, 20*time.Second), name+" standing by", func() bool {
		st, err := d.Status(context.Background())
		return err == nil && st.HA.Role == "standby"
	}); err != nil {
		t.Fatal(err)
	}
	return d
}

// waitRole waits until d reports role.
func waitRole(t *testing.T, d *integration.Daemon, role string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := integration.WaitFor(ctxFor(t, timeout), "role "+role, func() bool {
		st, err := d.Status(context.Background())
		return err == nil && st.HA.Role == role
	}); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// TestFaultHA: (7) high availability, two bridges in one HA group under
// load: the active one SIGTERMed (handover: no gap, nothing unanswered),
// SIGKILLed (crash failover: the gap is counted as no_listener), and
// SIGSTOPped past the session timeout then SIGCONTed (a zombie: it must
// leave what it reads unanswered and stop listening). The leak check
// samples the active bridge before and the new active one after.
func TestFaultHA(t *testing.T) {
	t.Run("handover", func(t *testing.T) {
		runFault(t, faultCase{Name: "7a HA handover (SIGTERM active)", Rate: 400, Duration: 20 * time.Second,
			Env: haEnv("a"), WaitListener: true,
			Inject: func(t *testing.T, f *faultRun) string {
				b := startStandby(t, f, "b")
				time.Sleep(3 * time.Second) // steady state first
				if err := f.D.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				took := waitRole(t, b, "active", 20*time.Second)
				if code, err := f.D.Wait(ctxFor(t, 30*time.Second)); err != nil || code != 0 {
					t.Fatalf("a: exit %d, %v", code, err)
				}
				f.D = b
				if st := f.E.Sim.Stats(); st.NoListener != 0 {
					t.Errorf("handover gap: %d messages found no listener", st.NoListener)
				}
				return fmt.Sprintf("b active %v after SIGTERM; no_listener %d", took.Round(10*time.Millisecond), f.E.Sim.Stats().NoListener)
			}})
	})
	t.Run("kill", func(t *testing.T) {
		runFault(t, faultCase{Name: "7b HA active SIGKILL", Rate: 400, Duration: 25 * time.Second,
			Env: haEnv("a"), WaitListener: true, AllowUnanswered: true,
			Inject: func(t *testing.T, f *faultRun) string {
				b := startStandby(t, f, "b")
				time.Sleep(3 * time.Second) // steady state first
				if err := f.D.Kill(); err != nil {
					t.Fatal(err)
				}
				took := waitRole(t, b, "active", 20*time.Second)
				f.D = b
				return fmt.Sprintf("b active %v after SIGKILL; no_listener %d so far", took.Round(10*time.Millisecond), f.E.Sim.Stats().NoListener)
			}})
	})
	t.Run("zombie", func(t *testing.T) {
		runFault(t, faultCase{Name: "7c HA zombie (SIGSTOP 9 s, SIGCONT)", Rate: 400, Duration: 25 * time.Second,
			Env: haEnv("a"), WaitListener: true, AllowUnanswered: true,
			Inject: func(t *testing.T, f *faultRun) string {
				b := startStandby(t, f, "b")
				time.Sleep(3 * time.Second) // steady state first
				a := f.D
				t.Cleanup(func() { _ = a.Signal(syscall.SIGCONT) }) // never leave it frozen
				stopped := time.Now()
				if err := a.Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				took := waitRole(t, b, "active", 20*time.Second)
				time.Sleep(time.Until(stopped.Add(9 * time.Second))) // the stop's length
				if err := a.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
				waitRole(t, a, "standby", 10*time.Second)
				fenced, _, err := a.Metric(ctxFor(t, 5*time.Second), "rtm2kafka_produce_errors_total")
				if err != nil {
					t.Fatal(err)
				}
				f.D = b
				return fmt.Sprintf("b active %v after SIGSTOP; zombie back to standby after SIGCONT, %v pushes left unanswered (produce_errors_total)", took.Round(10*time.Millisecond), fenced)
			}})
	})
}
