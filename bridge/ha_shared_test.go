package bridge

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// TestHAGroupSharedByPrefixesWarns: one BRIDGE_GROUP shared by two topic
// prefixes gives each prefix its own active bridge (found in an operator's
// review: not caught, and the alert named the wrong cause); the active
// bridges say so in their log.
func TestHAGroupSharedByPrefixesWarns(t *testing.T) {
	group := testkit.UniqueName(t) + ".shared"
	var logs [2]lockedBuf
	var bs [2]*Bridge
	for i := range bs {
		b, _ := testBridge(t, func(c *Config) {
			c.HA = &HAConfig{Group: group, SessionTimeout: 6 * time.Second, Instance: string(rune('a' + i))}
			c.Logger = slog.New(slog.NewTextHandler(&logs[i], nil))
		})
		bs[i] = b
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.RunHA(ctx, &fakeListen{}, rtm.ListenState{P2P: true}) }()
		t.Cleanup(func() {
			stop()
			if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, ErrClosed) {
				t.Errorf("RunHA = %v", err)
			}
		})
	}
	const warn = "the group is shared with bridges of another topic prefix"
	eventually(t, 60*time.Second, "both active and at least one warning", func() (bool, string) {
		both := bs[0].HAStatus().Role == "active" && bs[1].HAStatus().Role == "active"
		warned := strings.Contains(logs[0].String(), warn) || strings.Contains(logs[1].String(), warn)
		return both && warned, "roles " + bs[0].HAStatus().Role + "/" + bs[1].HAStatus().Role + "\n" + logs[0].String() + logs[1].String()
	})
}
