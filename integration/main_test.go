package integration_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/integration"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// binPath is the rtm2kafka binary built by TestMain; read-only afterwards.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rtm2kafka-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	binPath, err = integration.BuildBinary(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir) // the binary only
	os.Exit(code)
}

// setup is integration.NewEnv with the binary built by TestMain.
func setup(t *testing.T, cfg rtmsim.Config, brokers []string) *integration.Env {
	t.Helper()
	return integration.NewEnv(t, binPath, cfg, brokers)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
