package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// bridgeProc is the rtm2kafka daemon running as a separate process.
type bridgeProc struct {
	cmd     *exec.Cmd
	httpURL string
	logPath string
	exited  chan struct{}

	sampling atomic.Bool
	maxRSS   atomic.Int64 // kB, from the VmRSS sampler
	stopSamp chan struct{}
	sampWG   sync.WaitGroup
}

// freePort returns a free 127.0.0.1 TCP port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startBridge starts bin with env (added to the driver's environment), its
// output in logPath, and waits until /readyz answers 200.
func startBridge(ctx context.Context, bin string, env []string, logPath string) (*bridgeProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = append(append(os.Environ(), env...), fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", port))
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("bench: start %s: %w", bin, err)
	}
	b := &bridgeProc{cmd: cmd, httpURL: fmt.Sprintf("http://127.0.0.1:%d", port), logPath: logPath,
		exited: make(chan struct{}), stopSamp: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		lf.Close()
		close(b.exited)
	}()
	b.sampWG.Add(1)
	go b.sampleRSS()
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-b.exited:
			return nil, fmt.Errorf("bench: the bridge exited during start; see %s", logPath)
		case <-ctx.Done():
			b.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get(b.httpURL + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return b, nil
			}
		}
		if time.Now().After(deadline) {
			b.stop()
			return nil, fmt.Errorf("bench: the bridge was not ready within 90 s; see %s", logPath)
		}
	}
}

func (b *bridgeProc) pid() int { return b.cmd.Process.Pid }

// sampleRSS keeps the largest VmRSS seen while sampling is on, every 50 ms:
// the fallback for kernels without clear_refs, and the outage sampler.
func (b *bridgeProc) sampleRSS() {
	defer b.sampWG.Done()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-b.stopSamp:
			return
		case <-b.exited:
			return
		case <-t.C:
		}
		if !b.sampling.Load() {
			continue
		}
		if v := procStatusKB(b.pid(), "VmRSS"); v > b.maxRSS.Load() {
			b.maxRSS.Store(v)
		}
	}
}

// resetPeak starts a new peak RSS measurement: it resets the kernel's
// VmHWM (clear_refs 5) and the sampler's maximum.
func (b *bridgeProc) resetPeak() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", b.pid()), []byte("5"), 0)
	b.maxRSS.Store(procStatusKB(b.pid(), "VmRSS"))
	b.sampling.Store(true)
}

// peakRSSMiB returns the peak RSS since resetPeak: VmHWM, or the sampled
// maximum if that is larger (VmHWM not reset).
func (b *bridgeProc) peakRSSMiB() float64 {
	hwm := procStatusKB(b.pid(), "VmHWM")
	s := b.maxRSS.Load()
	if s > hwm {
		hwm = s
	}
	return float64(hwm) / 1024
}

// procStatusKB reads one kB field of /proc/<pid>/status; 0 if unavailable.
func procStatusKB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}

// metrics scrapes /metrics and returns the unlabelled samples (and
// labelled ones under their full text) by name.
func (b *bridgeProc) metrics() (map[string]float64, error) {
	resp, err := http.Get(b.httpURL + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("bench: scrape: %w", err)
	}
	defer resp.Body.Close()
	m := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// stop sends SIGTERM and waits (SIGKILL after 30 s).
func (b *bridgeProc) stop() {
	close(b.stopSamp)
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
	b.sampWG.Wait()
}
