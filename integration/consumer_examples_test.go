package integration_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/integration"
	"github.com/rtm2kafka/rtm2kafka/integration/kafkatest"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// EnvPython names the Python interpreter that runs docs/examples/consumer.py;
// scripts/test.sh sets it to a venv with confluent-kafka.
const EnvPython = "RTM2KAFKA_PYTHON"

// pythonFix is what to run when no Python with confluent-kafka is found.
const pythonFix = "python3 -m venv ~/.cache/rtm2kafka/py-venv && " +
	"~/.cache/rtm2kafka/py-venv/bin/pip install -r docs/examples/requirements.txt " +
	"(scripts/test.sh does this itself), or set " + EnvPython + " to a python with confluent-kafka"

// TestConsumerExamples writes records exactly as the bridge does (its value
// encoder, the router's keys and headers), with duplicates both close by and
// long after the first copy (as a gateway redelivery or a spool drain would),
// then runs the two consumers of docs/examples and checks that each prints
// every distinct push exactly once, with its first copy's value.
func TestConsumerExamples(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	root, err := integration.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	python := findPython(t, root)
	unit := exec.Command(python, "-m", "unittest", "discover", "-s", filepath.Join(root, "docs", "examples"), "-p", "test_*.py")
	unit.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1") // no __pycache__ in the work tree
	if out, err := unit.CombinedOutput(); err != nil {
		t.Fatalf("docs/examples/test_consumer.py: %v\n%s", err, out)
	}
	prefix := integration.Prefix(t, brokers)
	router := integration.Router(t, prefix)
	ctx := ctxFor(t, 3*time.Minute)

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	pushes, dupOf := examplePushes()
	names := map[string]bool{}
	for _, p := range pushes {
		names[router.Topic(p)] = true
	}
	adm := kadm.NewClient(cl)
	var topicList []string
	for n := range names {
		topicList = append(topicList, n)
	}
	created, err := adm.CreateTopics(ctx, 3, 1, nil, topicList...)
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
	for _, c := range created.Sorted() {
		if c.Err != nil {
			t.Fatalf("create topic %s: %v", c.Topic, c.Err)
		}
	}

	// want: dedupe key → the value of the first copy written.
	want := map[string]string{}
	var recs []*kgo.Record
	base := time.Now().UnixMilli()
	for i, p := range pushes {
		received := base + int64(i) // a redelivery is read again, later: another received_at
		value := bridge.AppendRecord(nil, bridge.FormatJSON, p, integration.TestPID, received)
		key := router.AppendKey(nil, p)
		hs, _ := topics.AppendHeaders(nil, nil, p, integration.TestPID)
		r := &kgo.Record{Topic: router.Topic(p), Value: value, Timestamp: time.UnixMilli(received)}
		if len(key) > 0 {
			r.Key = key
		}
		for _, h := range hs {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		recs = append(recs, r)
		id := exampleKey(p)
		if _, seen := want[id]; !seen {
			want[id] = string(value)
		} else if dupOf[i] < 0 {
			t.Fatalf("push %d: id %s repeats but is not meant as a duplicate", i, id)
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	dups := len(pushes) - len(want)
	t.Logf("wrote %d records: %d distinct pushes, %d duplicates", len(recs), len(want), dups)

	dir := t.TempDir()
	goBin := filepath.Join(dir, "consumer-go")
	build := exec.CommandContext(ctx, "go", "build", "-o", goBin, "./docs/examples/consumer-go")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build consumer-go: %v\n%s", err, out)
	}
	consumers := []struct {
		name string
		argv []string
	}{
		{"go", []string{goBin, "-brokers", strings.Join(brokers, ","), "-prefix", prefix,
			"-group", prefix + ".example-go", "-until-end"}},
		{"python", []string{python, filepath.Join(root, "docs", "examples", "consumer.py"), "--brokers", strings.Join(brokers, ","),
			"--prefix", prefix, "--group", prefix + ".example-py", "--until-end"}},
	}
	for _, c := range consumers {
		t.Run(c.name, func(t *testing.T) {
			cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(cctx, c.argv[0], c.argv[1:]...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v\nstderr:\n%s", strings.Join(c.argv, " "), err, stderr.String())
			}
			checkPrintedOnce(t, stdout.String(), want)
			t.Logf("%s consumer: %d lines; stderr: %s", c.name, strings.Count(stdout.String(), "\n"), strings.TrimSpace(stderr.String()))
		})
	}
}

// checkPrintedOnce checks that out has one line per key of want, each with
// that key's value, and nothing else.
func checkPrintedOnce(t *testing.T, out string, want map[string]string) {
	t.Helper()
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			t.Errorf("line %q: want key TAB topic TAB value", line)
			continue
		}
		got[f[0]]++
		if w, ok := want[f[0]]; !ok {
			t.Errorf("printed %q, which was never written", f[0])
		} else if f[2] != w {
			t.Errorf("%s: printed value %s, want the first copy's %s", f[0], f[2], w)
		}
	}
	for k := range want {
		switch n := got[k]; n {
		case 1:
		case 0:
			t.Errorf("%s: not printed", k)
		default:
			t.Errorf("%s: printed %d times", k, n)
		}
	}
}

// examplePushes returns pushes of several scopes and kinds and events, in
// which some pushes repeat an earlier one: dupOf[i] is the index of the push
// that push i repeats, or -1. Half the repeats follow their original closely,
// the others come after everything else (a late redelivery or spool drain).
func examplePushes() (pushes []*rtm.Push, dupOf []int) {
	add := func(p *rtm.Push, of int) {
		pushes = append(pushes, p)
		dupOf = append(dupOf, of)
	}
	const n = 120
	for i := range n {
		var p *rtm.Push
		switch i % 6 {
		case 0:
			p = &rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 10001, To: 10002 + int64(i%4), MType: 30,
				MID: 7201234567890300000 + int64(i), Msg: []byte(fmt.Sprintf("hello %d", i)), MTime: 1717000000000 + int64(i)}
		case 1:
			p = &rtm.Push{Scope: rtm.ScopeGroup, Kind: rtm.KindFile, From: 10003, To: 3001, MType: 40, MID: int64(i),
				Msg: []byte(`{"url":"https://files.example.com/a.jpg","size":1024}`), MTime: 1717000000000}
		case 2:
			p = &rtm.Push{Scope: rtm.ScopeRoom, Kind: rtm.KindMessage, From: 10004, To: 5001, MType: 127,
				MID: int64(i), Msg: []byte{0, 1, 2, 0xff, byte(i)}, MsgBinary: true, MTime: 1717000000000}
		case 3:
			// The same mid from another sender is another message.
			p = &rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 20001, To: 10002, MType: 30,
				MID: 7201234567890300000 + int64(i-3), Msg: []byte("same mid, other sender"), MTime: 1717000000000}
		default:
			// Login and logout of one user in the same second, from two ports:
			// distinct events, distinct ids.
			ev := "login"
			if i%6 == 5 {
				ev = "logout"
			}
			p = &rtm.Push{Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, PID: integration.TestPID, UID: 40000 + int64(i/6),
				Event: []byte(ev), Time: 1717000100, Endpoint: []byte(fmt.Sprintf("203.0.113.7:%d", 51000+i))}
			if i%12 == 4 {
				p.Data, p.HasData = []byte(`{"reason":"timeout"}`), true
			}
		}
		add(p, -1)
		if i%5 == 0 { // a redelivery soon after
			add(p, len(pushes)-1)
		}
	}
	for i := 0; i < n; i += 4 { // late copies, after everything else
		add(pushes[i], i)
	}
	return pushes, dupOf
}

// exampleKey is the dedupe key the example consumers print for p.
func exampleKey(p *rtm.Push) string {
	if p.Scope == rtm.ScopeEvent {
		return "e/" + string(topics.AppendEventID(nil, p))
	}
	return fmt.Sprintf("m/%s/%d/%d/%d", p.Scope, p.From, p.To, p.MID)
}

// findPython returns a Python interpreter that can import confluent_kafka:
// $RTM2KAFKA_PYTHON, else the venv scripts/test.sh makes, else python3. It
// fails the test, with the command that fixes it, when there is none.
func findPython(t *testing.T, root string) string {
	t.Helper()
	var candidates []string
	if p := os.Getenv(EnvPython); p != "" {
		candidates = append(candidates, p)
	} else {
		if cache, err := os.UserCacheDir(); err == nil {
			candidates = append(candidates, filepath.Join(cache, "rtm2kafka", "py-venv", "bin", "python"))
		}
		candidates = append(candidates, "python3")
	}
	var tried []string
	for _, c := range candidates {
		out, err := exec.Command(c, "-c", "import confluent_kafka; print(confluent_kafka.version()[0])").CombinedOutput()
		if err == nil {
			return c
		}
		tried = append(tried, fmt.Sprintf("%s: %v %s", c, err, lastLine(out)))
	}
	t.Fatalf("no Python with confluent-kafka for docs/examples/consumer.py (tried %s)\nfix (in %s): %s",
		strings.Join(tried, "; "), root, pythonFix)
	return ""
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
