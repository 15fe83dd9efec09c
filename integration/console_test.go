package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtm2kafka/rtm2kafka/integration"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// TestDashboardAndRulesUseExportedMetrics: every rtm2kafka_*, process_*
// and go_* name used by deploy/grafana/rtm2kafka.json and the rule files in
// deploy/prometheus is a series in /metrics of a running bridge (with a spool, so that the spool
// families exist too); histograms are used through _bucket, _sum or _count.
// The same daemon, started without HTTP_CONTROL_TOKEN, refuses control from
// the console with 403.
func TestDashboardAndRulesUseExportedMetrics(t *testing.T) {
	e := setup(t, rtmsim.Config{}, nil)
	d := e.Start(map[string]string{"SPOOL_DIR": t.TempDir()})
	text, err := d.Metrics(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	histograms := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if f := strings.Fields(name); len(f) == 2 && f[1] == "histogram" {
				histograms[f[0]] = true
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		exported[name] = true
	}
	root, err := integration.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	nameRe := regexp.MustCompile(`\b(?:rtm2kafka|process|go)_[a-zA-Z0-9_]+`)
	checked := 0
	for _, file := range []string{"deploy/grafana/rtm2kafka.json", "deploy/prometheus/alerts.yml", "deploy/prometheus/alerts-no-traffic.yml"} {
		src, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		used := slices.Compact(slices.Sorted(slices.Values(nameRe.FindAllString(string(src), -1))))
		if len(used) == 0 {
			t.Errorf("%s uses no metric at all: is the pattern still right?", file)
		}
		for _, name := range used {
			checked++
			switch {
			case histograms[name]:
				t.Errorf("%s uses the histogram %s bare: use %[2]s_bucket, %[2]s_sum or %[2]s_count", file, name)
			case exported[name]:
			default:
				t.Errorf("%s uses %s, which a running bridge does not export", file, name)
			}
		}
	}
	t.Logf("checked %d metric uses against %d exported series names", checked, len(exported))

	// This daemon has no HTTP_CONTROL_TOKEN: the console is read-only and
	// its control endpoint refuses everything, a good token or not.
	req, err := http.NewRequestWithContext(ctxFor(t, 10*time.Second), http.MethodPost, "http://"+d.HTTPAddr+"/api/control",
		strings.NewReader(`{"id":"ro-1","op":"add","gids":[1]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer anything")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "HTTP_CONTROL_TOKEN") {
		t.Errorf("POST /api/control without a configured token: %d %s, want 403 naming HTTP_CONTROL_TOKEN", res.StatusCode, body)
	}
}

// chromiumPath finds a Chromium or Chrome binary: $CHROME_BIN, then the
// usual names on PATH, then the usual install paths.
func chromiumPath() (string, error) {
	if p := os.Getenv("CHROME_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CHROME_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	for _, p := range []string{"/usr/lib/chromium/chromium", "/usr/bin/chromium", "/snap/bin/chromium",
		"/Applications/Google Chrome.app/Contents/MacOS/Google Chrome", "/Applications/Chromium.app/Contents/MacOS/Chromium"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium found: install it (Debian: apt-get install chromium; scripts/test.sh does it) or set CHROME_BIN")
}

// TestConsoleInBrowser opens the console in headless Chromium against the
// real daemon, simulator and broker: the link shows listening, the counters
// move while the simulator pushes, a command without the token is refused
// and changes nothing, a bad one gets the control topic's precise error,
// and an add with the token changes the simulator's listen state and its
// result appears on the page. It saves a screenshot to $CONSOLE_SCREENSHOT
// (e.g. docs/console.png), else to the test's artifact directory.
func TestConsoleInBrowser(t *testing.T) {
	chrome, err := chromiumPath()
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t, rtmsim.Config{}, nil)
	const token = "console-test-token-7d1f"
	d := e.Start(map[string]string{"HTTP_CONTROL_TOKEN": token, "SPOOL_DIR": t.TempDir()})
	want := integration.AllFlags()
	integration.WaitListenState(t, e.Sim, want)

	// Traffic for the whole test, and a few dead letters.
	genCtx, stopGen := context.WithCancel(context.Background())
	genDone := make(chan error, 1)
	go func() {
		_, err := e.Sim.Generate(genCtx, rtmsim.LoadConfig{Rate: 80, Duration: 3 * time.Minute, Seed: 10})
		genDone <- err
	}()
	t.Cleanup(func() { stopGen(); <-genDone })
	for _, kind := range []string{rtmsim.MalformedGarbagePayload, rtmsim.MalformedMissingField, rtmsim.MalformedWrongType} {
		if _, err := e.Sim.SendMalformed(kind); err != nil {
			t.Fatal(err)
		}
	}

	ctx := ctxFor(t, 3*time.Minute)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 1600))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	// waitJS polls a JavaScript condition in the page until it is true.
	waitJS := func(what, cond string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(bctx, 45*time.Second)
		defer cancel()
		if _, err := chromedp.Run(wctx, chromedp.Poll[any](cond, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(45*time.Second))); err != nil {
			state, _ := chromedp.Run(bctx, chromedp.Text(chromedp.ID("link-state")))      // for the message only
			status, _ := chromedp.Run(bctx, chromedp.Text(chromedp.ID("control-status"))) // likewise
			t.Fatalf("console: waiting for %s: %v (link %q, control status %q)", what, err, state, status)
		}
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("console: read #%s: %v", id, err)
		}
		return s
	}
	// fill sets form fields by id and then clicks send.
	fill := func(fields map[string]string) {
		t.Helper()
		js, err := json.Marshal(fields)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => {
			for (const [id, v] of Object.entries(`+string(js)+`)) {
				const el = document.getElementById(id);
				el.value = v;
				el.dispatchEvent(new Event('change', {bubbles: true}));
			}
			document.getElementById('control-status').dataset.state = 'idle';
			document.getElementById('send').click();
			return true;
		})()`)); err != nil {
			t.Fatalf("console: fill the form with %v: %v", fields, err)
		}
	}
	num := func(id string) string {
		return `Number(document.getElementById('` + id + `').textContent.replace(/,/g, ''))`
	}

	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+d.HTTPAddr+"/")); err != nil {
		t.Fatalf("console: open http://%s/: %v", d.HTTPAddr, err)
	}
	waitJS("the link to show listening", `document.getElementById('link-state').textContent === 'listening'`)
	waitJS("the push counter to show pushes", num("pushes-total")+` > 0`)
	first, err := chromedp.Run(bctx, chromedp.Evaluate[float64](num("pushes-total")))
	if err != nil {
		t.Fatal(err)
	}
	waitJS("the push counter to move", fmt.Sprintf(`%s > %v && %s > 0`, num("pushes-total"), first, num("answered-total")))
	waitJS("a push rate", `document.getElementById('pushes-rate').textContent !== '—'`)
	waitJS("the dead letters", `document.querySelectorAll('#dead-table tbody tr').length >= 3`)
	t.Logf("console: link %s, pushes %s → %s, %s pushes/s, p99 %s ms", text("link-state"), fmt.Sprint(first),
		text("pushes-total"), text("pushes-rate"), text("p99"))

	// Without the token: refused, nothing changes.
	fill(map[string]string{"op": "add", "gids": "4242", "token": ""})
	waitJS("the refusal", `document.getElementById('control-status').dataset.state === 'refused'`)
	if s := text("control-status"); !strings.Contains(s, "401") {
		t.Errorf("without the token the page shows %q, want a 401 refusal", s)
	}
	// A wrong token is refused the same way.
	fill(map[string]string{"token": "wrong-token"})
	waitJS("the refusal of a wrong token", `document.getElementById('control-status').dataset.state === 'refused'`)
	if s := text("control-status"); !strings.Contains(s, "401") {
		t.Errorf("with a wrong token the page shows %q, want a 401 refusal", s)
	}

	// A bad id with the token: the control topic's own error, nothing sent.
	fill(map[string]string{"token": token, "gids": "-5"})
	waitJS("the error for a negative id", `document.getElementById('control-status').dataset.state === 'error'`)
	if s := text("control-status"); !strings.Contains(s, `field "gids": element 0: -5 is not a positive id`) {
		t.Errorf("a negative id shows %q, want the control topic's error", s)
	}
	if sts := e.Sim.ListenStates(); len(sts) != 1 || !integration.SameListen(sts[0], want) {
		t.Fatalf("refused commands changed the simulator's listen state: %+v", sts)
	}

	// With the token: applied, the simulator listens to gid 4242, the page
	// shows the result.
	fill(map[string]string{"gids": "4242"})
	waitJS("the add to be applied", `document.getElementById('control-status').dataset.state === 'ok'`)
	want.GIDs = []int64{4242}
	integration.WaitListenState(t, e.Sim, want)
	waitJS("the result in the results table", `[...document.querySelectorAll('#results-table tbody tr')].some(r => r.dataset.id.startsWith('console-') && r.textContent.includes('4242') && r.textContent.includes('ok'))`)
	waitJS("the listen state on the page", `document.getElementById('listen-gids').textContent === '4242'`)
	t.Logf("console: control status %q", text("control-status"))
	st, err := d.Status(ctxFor(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.Bridge.ControlApplied != 1 || st.Bridge.ControlRejected != 0 {
		t.Errorf("daemon control counters applied=%d rejected=%d, want 1 and 0 (refused commands never reach the topic)", st.Bridge.ControlApplied, st.Bridge.ControlRejected)
	}
	if strings.Contains(d.Log(), token) {
		t.Error("the control token appears in the daemon's log")
	}

	// The screenshot, once the sparklines have some history.
	waitJS("sparkline history", `(document.querySelector('#spark-pushes path')?.getAttribute('d') || '').split('L').length > 12`)
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("CONSOLE_SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.ArtifactDir(), "console.png")
	} else if !filepath.IsAbs(out) {
		root, err := integration.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		out = filepath.Join(root, out)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("console: screenshot %s (%d bytes)", out, len(png))
}
