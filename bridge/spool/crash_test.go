package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashDirEnv = "SPOOL_CRASH_HELPER_DIR"

// TestMain runs the test binary as the crash helper when asked to.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashHelper(dir)
	}
	os.Exit(m.Run())
}

// crashHelper is the child process of TestKilledProcessKeepsAckedRecords:
// it appends from 8 goroutines until killed and prints "ack W I" after each
// Append returned nil.
func crashHelper(dir string) {
	s, err := Open(dir, Options{SegmentBytes: 64 << 10})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := range 8 {
		go func() {
			for i := 0; ; i++ {
				r := testRec(i, 300)
				r.Key = fmt.Appendf(nil, "%d/%d", w, i)
				if err := s.Append(context.Background(), r); err != nil {
					fmt.Println("append:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %d %d\n", w, i)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {} // until killed
}

// TestKilledProcessKeepsAckedRecords SIGKILLs a process in the middle of
// appending, then checks that every record whose Append had returned is
// there, in order, and that the other process's lock named its pid.
func TestKilledProcessKeepsAckedRecords(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }() // already dead on the normal path
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("helper did not start: %q", sc.Text())
	}
	_, err = Open(dir, Options{})
	if want := fmt.Sprintf("held by another running rtm2kafka (pid %d)", cmd.Process.Pid); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open while another process holds the spool: %v; want ErrLocked saying %q", err, want)
	}
	acked := make(map[string]bool)
	deadline := time.Now().Add(10 * time.Second)
	for len(acked) < 3000 && time.Now().Before(deadline) && sc.Scan() {
		var w, i int
		if _, err := fmt.Sscanf(sc.Text(), "ack %d %d", &w, &i); err != nil {
			t.Fatalf("helper said %q", sc.Text())
		}
		acked[fmt.Sprintf("%d/%d", w, i)] = true
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: the error is expected
	if len(acked) < 100 {
		t.Fatalf("only %d acks before the deadline", len(acked))
	}

	s := mustOpen(t, dir, Options{SegmentBytes: 64 << 10})
	rep := s.Stats().Recovered
	next := make(map[int]int)
	found := 0
	for _, e := range drainAll(t, s, 0, 0) {
		var w, i int
		if _, err := fmt.Sscanf(string(e.Key), "%d/%d", &w, &i); err != nil {
			t.Fatal(err)
		}
		if i != next[w] {
			t.Fatalf("goroutine %d: record %d follows %d", w, i, next[w]-1)
		}
		next[w]++
		if acked[string(e.Key)] {
			found++
		}
	}
	if found != len(acked) {
		t.Fatalf("%d of %d acked records survived the kill", found, len(acked))
	}
	t.Logf("killed after %d acks; all of them recovered, plus %d appended but not yet acked; cut %d bytes (%d records)",
		len(acked), int(s.Stats().Trimmed)-found, rep.TruncatedBytes, rep.DroppedRecords)
}
