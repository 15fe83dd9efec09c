package integration_test

// A short variant of the fault suite (faults_test.go, `make faults`) that
// runs with every `go test`: 10 link drops and 1,000 control commands, each
// under load with exact loss accounting (about 30 s together). A short
// broker kill was measured too (about 33 s alone with -race: a private
// broker's start and restart are most of it) and left out: it would take the
// variant past a minute, and TestKafkaOutage already kills a private broker
// under load in every run. The names avoid "Fault" so scripts/faults.sh's
// -run pattern does not repeat them.

import (
	"testing"
	"time"
)

// TestQuickLinkDrops: 10 RTM link drops under load; nothing answered is
// lost, no goroutine leaks.
func TestQuickLinkDrops(t *testing.T) {
	runFault(t, faultCase{Name: "quick: RTM link dropped ×10", Rate: 400, Duration: 10 * time.Second,
		Redeliver: true, WaitListener: true, AllowUnanswered: true,
		Inject: func(t *testing.T, f *faultRun) string { return dropLink(t, f, 10) }})
}

// TestQuickControlFlood: 1,000 random control commands under load; every
// result and the final listen state everywhere equal the model.
func TestQuickControlFlood(t *testing.T) {
	runFault(t, faultCase{Name: "quick: control commands ×1000", Rate: 300, Duration: 5 * time.Second,
		Inject: func(t *testing.T, f *faultRun) string { return controlFlood(t, f, 1000, 5) }})
}
