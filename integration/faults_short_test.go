package integration_test

// A short variant of the fault suite (faults_test.go, `make faults`) that
// runs with every `go test`: 10 link drops, a short broker kill, 1,000
// control commands, each under load with exact loss accounting. The names
// avoid "Fault" so scripts/faults.sh's -run pattern does not repeat them.

import (
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/integration"
)

// TestQuickLinkDrops: 10 RTM link drops under load; nothing answered is
// lost, no goroutine leaks.
func TestQuickLinkDrops(t *testing.T) {
	runFault(t, faultCase{Name: "quick: RTM link dropped ×10", Rate: 400, Duration: 12 * time.Second,
		Redeliver: true, WaitListener: true, AllowUnanswered: true,
		Inject: func(t *testing.T, f *faultRun) string { return dropLink(t, f, 10) }})
}

// TestQuickBrokerKill: a private broker SIGKILLed under load and restarted
// 3 s later, spool on (so nothing may be answered late either).
func TestQuickBrokerKill(t *testing.T) {
	pk := integration.StartPrivateKafka(t)
	runFault(t, faultCase{Name: "quick: broker SIGKILL 3 s", Spool: true, Brokers: pk.Brokers, Rate: 400, Duration: 15 * time.Second,
		Inject: func(t *testing.T, f *faultRun) string {
			time.Sleep(2 * time.Second) // steady state first
			return killBroker(t, pk, 3*time.Second)
		}})
}

// TestQuickControlFlood: 1,000 random control commands under load; every
// result and the final listen state everywhere equal the model.
func TestQuickControlFlood(t *testing.T) {
	runFault(t, faultCase{Name: "quick: control commands ×1000", Rate: 300, Duration: 8 * time.Second,
		Inject: func(t *testing.T, f *faultRun) string { return controlFlood(t, f, 1000, 5) }})
}
