package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RepoRoot returns the repository root: the nearest directory above the
// working directory that holds go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testkit: repo root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testkit: repo root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// PrivateKafka is a broker of one test's own, run by scripts/kafka.sh on
// free ports with a state directory in the test's temp dir, for tests that
// stop, kill or freeze a broker. It never touches the shared broker.
type PrivateKafka struct {
	// Brokers is its bootstrap address list.
	Brokers []string

	script string
	env    []string
	state  string
	mu     sync.Mutex
}

// StartPrivateKafka starts a private broker (about 5 s) and stops it,
// wiping its data, when the test ends (resuming it first if the test left
// it frozen).
func StartPrivateKafka(t testing.TB) *PrivateKafka {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	port, cport := freePort(t), freePort(t)
	if port == "19092" || cport == "19093" || port == cport {
		t.Fatalf("StartPrivateKafka: unlucky ports %s/%s", port, cport)
	}
	state := filepath.Join(t.TempDir(), "kafka")
	k := &PrivateKafka{
		Brokers: []string{"127.0.0.1:" + port},
		script:  filepath.Join(root, "scripts", "kafka.sh"),
		env: append(os.Environ(), "KAFKA_PORT="+port, "KAFKA_CONTROLLER_PORT="+cport,
			"RTM2KAFKA_STATE="+state, "KAFKA_HEAP=-Xms128m -Xmx512m"),
		state: state,
	}
	t.Cleanup(func() {
		_ = k.Signal(syscall.SIGCONT) // never leave it frozen; it may not run at all
		if out, err := k.run("stop"); err != nil {
			t.Logf("private kafka stop: %v\n%s", err, out)
		}
	})
	// Up to three tries: a first start formats the storage with a random
	// cluster id, which kafka.sh passes as "-t <id>"; an id starting with
	// "-" (1 in 64) is taken for an option and the format fails.
	var out string
	for try := 0; try < 3; try++ {
		if out, err = k.run("start"); err == nil {
			return k
		}
		if !strings.Contains(out, "formatting KRaft storage") {
			break
		}
	}
	t.Fatalf("StartPrivateKafka (bash scripts/kafka.sh start with KAFKA_PORT=%s): %v\n%s", port, err, out)
	return nil
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	_, p, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (k *PrivateKafka) run(args ...string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := exec.Command("bash", append([]string{k.script}, args...)...)
	c.Env = k.env
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("testkit: kafka.sh %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// Start starts (or restarts, on the same data) the broker and waits until
// it serves.
func (k *PrivateKafka) Start() error {
	if out, err := k.run("start"); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// Kill SIGKILLs the broker (a crash), keeping its data.
func (k *PrivateKafka) Kill() error {
	if out, err := k.run("kill"); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// Stop stops the broker cleanly, keeping its data.
func (k *PrivateKafka) Stop() error {
	if out, err := k.run("stop", "--keep-data"); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// PID returns the broker JVM's pid: the process running "kafka.Kafka" on
// this broker's server.properties (found in /proc, so a pid file naming a
// wrapper process cannot mislead a SIGSTOP), else kafka.sh's pid file.
func (k *PrivateKafka) PID() (int, error) {
	if pid, err := JVMPid(filepath.Join(k.state, "server.properties")); err == nil {
		return pid, nil
	}
	raw, err := os.ReadFile(filepath.Join(k.state, "kafka.pid"))
	if err != nil {
		return 0, fmt.Errorf("testkit: private kafka pid: %w", err)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(raw)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("testkit: private kafka pid %q: %v", raw, err)
	}
	return pid, nil
}

// JVMPid returns the pid of the process whose command line runs
// "kafka.Kafka" with the properties file props.
func JVMPid(props string) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("testkit: %w", err)
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
			if a == "kafka.Kafka" && i+1 < len(args) && args[i+1] == props {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("testkit: no kafka.Kafka process on %s", props)
}

// Signal sends sig to the broker's JVM. For SIGSTOP it returns only once
// every thread of the JVM is stopped: a thread busy on another core can
// otherwise still answer requests for a moment after the signal was sent
// (seen on a loaded 2-core machine: a "frozen" broker acked 80 records).
func (k *PrivateKafka) Signal(sig syscall.Signal) error {
	pid, err := k.PID()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("testkit: kill -%v %d: %w", sig, pid, err)
	}
	if sig != syscall.SIGSTOP {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Wait(ctx, fmt.Sprintf("every thread of broker %d stopped after SIGSTOP", pid), func() bool { return allThreadsStopped(pid) })
}

// allThreadsStopped reports whether every thread of pid is in state T
// (stopped) or t (traced).
func allThreadsStopped(pid int) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		return false
	}
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(dir, ent.Name(), "stat"))
		if err != nil {
			continue // the thread ended
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return true
}
