package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// The project the simulator and the daemon agree on unless a test says
// otherwise.
const (
	// TestPID is the RTM project id of [StartSim] and [DaemonEnv].
	TestPID int64 = 11000001
	// TestSecret is the project secret of [StartSim] and [DaemonEnv].
	TestSecret rtm.Secret = "integration-secret-key"
)

// RepoRoot returns the directory holding the module's go.mod, searched
// upwards from the working directory (a test's package directory).
func RepoRoot() (string, error) { return testkit.RepoRoot() }

// BuildBinary builds ./cmd/rtm2kafka (plain go build, no -race: the race
// detector covers the test process, and the daemon's own packages have
// -race unit tests) into dir and returns the binary's path. Call it once per
// test binary, from TestMain; it takes a few seconds with a warm build
// cache.
func BuildBinary(ctx context.Context, dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "rtm2kafka")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/rtm2kafka")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("integration: go build ./cmd/rtm2kafka: %w\n%s", err, msg)
	}
	return out, nil
}

// StartSim starts a simulator listening on 127.0.0.1:0 and closes it when
// the test ends. A zero PID or empty Secret in cfg becomes [TestPID] or
// [TestSecret].
func StartSim(t testing.TB, cfg rtmsim.Config) *rtmsim.Server {
	t.Helper()
	if cfg.PID == 0 {
		cfg.PID = TestPID
	}
	if cfg.Secret == "" {
		cfg.Secret = TestSecret
	}
	s := rtmsim.New(cfg)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatalf("StartSim: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() }) // Close always returns nil
	return s
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago (another process may take it before it is used; good enough for
// tests).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("FreeAddr: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // only the number was wanted
	return addr
}

// DaemonEnv returns the environment of a daemon that bridges sim (by
// address) into brokers under the topic prefix: RTM_ENDPOINT, RTM_PID,
// RTM_SECRET, KAFKA_BROKERS, KAFKA_TOPIC_PREFIX, KAFKA_PARTITIONS=3,
// LOG_LEVEL=debug, LOG_FORMAT=json and SHUTDOWN_TIMEOUT=20s. Add or override
// entries before [StartDaemon]; HTTP_ADDR is chosen by StartDaemon when
// absent.
func DaemonEnv(simAddr string, brokers []string, prefix string) map[string]string {
	return map[string]string{
		"RTM_ENDPOINT":       simAddr,
		"RTM_PID":            strconv.FormatInt(TestPID, 10),
		"RTM_SECRET":         string(TestSecret),
		"KAFKA_BROKERS":      strings.Join(brokers, ","),
		"KAFKA_TOPIC_PREFIX": prefix,
		"KAFKA_PARTITIONS":   "3",
		"LOG_LEVEL":          "debug",
		"LOG_FORMAT":         "json",
		"SHUTDOWN_TIMEOUT":   "20s",
	}
}

// Daemon is one rtm2kafka process started by [StartDaemon].
type Daemon struct {
	// HTTPAddr is the ops server's address (HTTP_ADDR).
	HTTPAddr string
	// LogPath is the file that receives the daemon's stderr (its logs).
	LogPath string
	// Env is the daemon's configuration as given to StartDaemon (plus
	// HTTP_ADDR).
	Env map[string]string

	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	code   int           // exit code; valid after done
	client *http.Client
}

// StartDaemon starts bin ("rtm2kafka run") with env (see [DaemonEnv]) and
// returns once the process runs; use [Daemon.WaitReady] to wait for it to
// listen. HTTP_ADDR defaults to a free local port. The daemon's stderr goes
// to a file in the test's temp dir whose last 300 lines are printed if the
// test fails; a daemon still running when the test ends is killed.
func StartDaemon(t testing.TB, bin string, env map[string]string) *Daemon {
	t.Helper()
	d := &Daemon{Env: make(map[string]string, len(env)+1), done: make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second}}
	for k, v := range env {
		d.Env[k] = v
	}
	if d.Env["HTTP_ADDR"] == "" {
		d.Env["HTTP_ADDR"] = FreeAddr(t)
	}
	d.HTTPAddr = d.Env["HTTP_ADDR"]
	f, err := os.CreateTemp(t.TempDir(), "rtm2kafka-*.log")
	if err != nil {
		t.Fatalf("StartDaemon: %v", err)
	}
	d.LogPath = f.Name()
	d.cmd = exec.Command(bin, "run")
	d.cmd.Stdout = f
	d.cmd.Stderr = f
	d.cmd.Env = daemonEnviron(d.Env)
	if err := d.cmd.Start(); err != nil {
		_ = f.Close()
		t.Fatalf("StartDaemon: start %s: %v", bin, err)
	}
	go func() {
		err := d.cmd.Wait()
		_ = f.Close() // the process is gone; nothing more is written
		d.code = exitCode(d.cmd, err)
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill() // test over: the process must not outlive it
			<-d.done
		}
		if t.Failed() {
			t.Logf("daemon log %s (last lines):\n%s", d.LogPath, tailFile(d.LogPath, 300))
		}
	})
	return d
}

// daemonEnviron is the test's environment without rtm2kafka's variable
// families (so only env counts), plus env.
func daemonEnviron(env map[string]string) []string {
	configPrefixes := []string{"RTM_", "KAFKA_", "BRIDGE_", "HTTP_", "LOG_", "SHUTDOWN_", "SPOOL_"}
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		inherit := true
		for _, p := range configPrefixes {
			if strings.HasPrefix(k, p) {
				inherit = false
				break
			}
		}
		if inherit {
			out = append(out, kv)
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// exitCode is the shell's view of how the process ended: its exit status,
// or 128+n after signal n.
func exitCode(cmd *exec.Cmd, err error) int {
	if err == nil {
		return 0
	}
	if cmd.ProcessState == nil {
		return -1
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return cmd.ProcessState.ExitCode()
}

// tailFile returns the last n lines of path.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 2*n {
			lines = append(lines[:0], lines[len(lines)-n:]...)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Log returns the daemon's log so far.
func (d *Daemon) Log() string {
	b, err := os.ReadFile(d.LogPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Done is closed when the process has exited.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Get fetches path from the ops server and returns the status code and
// body as they are (for checks on the raw text, such as a secret scan).
func (d *Daemon) Get(ctx context.Context, path string) (int, []byte, error) { return d.get(ctx, path) }

// get fetches path from the ops server.
func (d *Daemon) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.HTTPAddr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	res, err := d.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, body, err
}

// WaitReady polls /readyz until it answers 200 (the RTM link is listening
// and Kafka is writable), the process exits, or ctx ends.
func (d *Daemon) WaitReady(ctx context.Context) error {
	var last string
	for {
		code, body, err := d.get(ctx, "/readyz")
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = strings.TrimSpace(string(body))
		}
		select {
		case <-d.done:
			return fmt.Errorf("integration: daemon exited with code %d before it was ready (last /readyz: %s)", d.code, last)
		case <-ctx.Done():
			return fmt.Errorf("integration: daemon not ready: %s: %w", last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Healthy reports whether /healthz answers 200.
func (d *Daemon) Healthy(ctx context.Context) bool {
	code, _, err := d.get(ctx, "/healthz")
	return err == nil && code == http.StatusOK
}

// Status is the daemon's /status document.
type Status struct {
	Version  string       `json:"version"`
	Stopping bool         `json:"stopping"`
	Bridge   bridge.Stats `json:"bridge"`
	Link     struct {
		State   string `json:"state"`
		Reason  string `json:"reason"`
		Attempt int    `json:"attempt"`
	} `json:"link"`
	Listen  rtm.ListenState  `json:"listen"`
	Session rtm.SessionStats `json:"session"`
	HA      bridge.HAStatus  `json:"ha"`
}

// Status fetches and decodes /status.
func (d *Daemon) Status(ctx context.Context) (Status, error) {
	var st Status
	code, body, err := d.get(ctx, "/status")
	if err != nil {
		return st, fmt.Errorf("integration: /status: %w", err)
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("integration: /status: HTTP %d: %s", code, body)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("integration: /status: %w", err)
	}
	return st, nil
}

// Metrics fetches /metrics (Prometheus text format).
func (d *Daemon) Metrics(ctx context.Context) (string, error) {
	code, body, err := d.get(ctx, "/metrics")
	if err != nil {
		return "", fmt.Errorf("integration: /metrics: %w", err)
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("integration: /metrics: HTTP %d", code)
	}
	return string(body), nil
}

// Metric returns the sum of every sample of the metric name (all label
// sets) in /metrics, and whether any sample was found.
func (d *Daemon) Metric(ctx context.Context, name string) (float64, bool, error) {
	text, err := d.Metrics(ctx)
	if err != nil {
		return 0, false, err
	}
	var sum float64
	found := false
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		series, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if n, _, _ := strings.Cut(series, "{"); n != name {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return 0, false, fmt.Errorf("integration: metric %s: %q: %w", name, line, err)
		}
		sum += v
		found = true
	}
	return sum, found, nil
}

// Signal sends sig to the process.
func (d *Daemon) Signal(sig os.Signal) error {
	if err := d.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("integration: signal %v: %w", sig, err)
	}
	return nil
}

// Kill sends SIGKILL.
func (d *Daemon) Kill() error { return d.Signal(syscall.SIGKILL) }

// Wait waits for the process to exit and returns its exit code (128+n for
// a death by signal n), or ctx's error.
func (d *Daemon) Wait(ctx context.Context) (int, error) {
	select {
	case <-d.done:
		return d.code, nil
	case <-ctx.Done():
		return -1, fmt.Errorf("integration: daemon still running: %w", ctx.Err())
	}
}

// WaitFor polls cond until it returns true or ctx ends ([testkit.Wait]),
// and returns ctx's error annotated with what (for conditions no simulator
// or daemon event signals).
func WaitFor(ctx context.Context, what string, cond func() bool) error {
	if err := testkit.Wait(ctx, what, cond); err != nil {
		return fmt.Errorf("integration: %w", err)
	}
	return nil
}
