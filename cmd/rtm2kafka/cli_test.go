package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// Every --help is on stdout, exit 0, nothing on stderr, and matches its
// golden file (go test -run TestHelpGolden -update rewrites them).
func TestHelpGolden(t *testing.T) {
	for _, c := range []struct{ golden, args string }{
		{"help-main", "--help"},
		{"help-main", "help"},
		{"help-run", "run --help"},
		{"help-sim", "sim --help"},
		{"help-ctl", "ctl --help"},
		{"help-ctl", "ctl -h"},
		{"help-ctl", "help ctl"},
		{"help-tail", "tail --help"},
		{"help-version", "version --help"},
	} {
		code, out, errOut := run(t, nil, strings.Fields(c.args)...)
		if code != 0 || errOut != "" {
			t.Errorf("%s: exit %d, stderr %q; want 0 and nothing", c.args, code, errOut)
		}
		path := filepath.Join("testdata", c.golden+".golden")
		if *update {
			if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestHelpGolden -update)", err)
		}
		if out != string(want) {
			t.Errorf("%s: help differs from %s (go test -run TestHelpGolden -update rewrites it):\n%s", c.args, path, out)
		}
	}
}

// The subcommands share one help layout: Usage, Flags with --name, and the
// environment table generated from the config structs.
func TestHelpLayoutShared(t *testing.T) {
	for _, cmd := range []string{"run", "ctl", "tail", "version"} {
		_, out, _ := run(t, nil, cmd, "--help")
		for _, want := range []string{"\nUsage:\n  rtm2kafka ", "\nFlags:\n", "  -h, --help  "} {
			if !strings.Contains(out, want) {
				t.Errorf("%s --help lacks %q", cmd, want)
			}
		}
		if strings.Contains(out, "\n  -") && strings.Contains(out, " string\n    \t") {
			t.Errorf("%s --help uses Go's -flag layout:\n%s", cmd, out)
		}
	}
}

// Exit codes: 0 done, 1 failed, 2 usage error with a one-line hint (not
// the whole help).
func TestExitCodes(t *testing.T) {
	good := map[string]string{"RTM_PID": "1", "RTM_SECRET": "s", "RTM_ENDPOINT": "127.0.0.1:1"}
	for _, c := range []struct {
		args string
		env  map[string]string
		code int
		want string
	}{
		{"frobnicate", nil, 2, `unknown command "frobnicate"`},
		{"--bogus", nil, 2, "flag provided but not defined: --bogus"},
		{"run --bogus", nil, 2, "flag provided but not defined: --bogus"},
		{"ctl --bogus add", nil, 2, "--bogus"},
		{"tail --bogus", nil, 2, "--bogus"},
		{"version --bogus", nil, 2, "--bogus"},
		{"version extra", nil, 2, `unexpected argument "extra"`},
		{"run extra", good, 2, `unexpected argument "extra"`},
		{"ctl", nil, 2, "want exactly one OP"},
		{"ctl add remove", nil, 2, "want exactly one OP"},
		{"ctl --timeout soon add", nil, 2, "--timeout"},
		{"ctl --events logn add", nil, 2, `event "logn": the gateway pushes only login and logout`},
		{"ctl --json {", nil, 2, "--json: not a JSON object"},
		{"ctl --gids x add", nil, 2, `--gids: "x" is not an integer id`},
		{"ctl frob", nil, 2, `unknown OP "frob": want add, remove, set, set_all or show`},
		{"ctl frob --gids 3", nil, 2, `unknown OP "frob"`},
		{"ctl --json {\"op\":\"add\",\"gids\":[1]} frob", nil, 2, "give either --json or OP, not both"},
		{"ctl add --gids x", nil, 2, `--gids: "x" is not an integer id`},
		{"ctl add --bogus", nil, 2, "flag provided but not defined: --bogus"},
		{"ctl add --timeout", nil, 2, "flag needs an argument: --timeout"},
		{"ctl add --events logn", nil, 2, `event "logn"`},
		{"ctl --gids 3 -- add --uids 4", nil, 2, "want exactly one OP"},
		{"ctl -- --gids", nil, 2, `unknown OP "--gids"`},
		{"ctl add --kafka-brokers a:1, --gids 1", nil, 1, "KAFKA_BROKERS: entry 2 of 2: empty"},
		{"tail extra", nil, 2, `unexpected argument "extra"`},
		{"tail extra --n 1", nil, 2, `unexpected argument "extra"`},
		{"ctl --json {\"id\":\"a\",\"op\":\"add\",\"gids\":[-5]}", nil, 1, "invalid command: field \"gids\": element 0: -5 is not a positive id"},
		{"ctl --kafka-brokers a:1, --gids 1 add", nil, 1, "KAFKA_BROKERS: entry 2 of 2: empty"},
		{"run", map[string]string{"RTM_PID": "x"}, 1, "RTM_PID: invalid value, want an integer"},
	} {
		code, out, errOut := run(t, c.env, strings.Fields(c.args)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", c.args, code, errOut, c.code, c.want)
		}
		if c.code == 2 {
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[1], "Run 'rtm2kafka") || out != "" {
				t.Errorf("%s: want one error line and one hint on stderr, nothing on stdout; got stdout %q stderr %q", c.args, out, errOut)
			}
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}, {"-v"}} {
		code, out, errOut := run(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "rtm2kafka ") || strings.Count(out, "\n") != 1 || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// Each error says its context once.
func TestErrorContextOnce(t *testing.T) {
	for in, want := range map[string]string{
		"ctl: bridge: bridge: command: x": "bridge: command: x",
		"bridge: restore listen: y":       "bridge: restore listen: y",
		"sim: sim: listen: z":             "listen: z",
	} {
		name, msg, _ := strings.Cut(in, ": ")
		if name != "ctl" && name != "sim" {
			name, msg = "run", in
		}
		if got := contextOnce(name, msg); got != want {
			t.Errorf("contextOnce(%q, %q) = %q, want %q", name, msg, got, want)
		}
	}
}

// A variable with our prefix that no command knows is warned about, with a
// "did you mean" for a near miss; the scripts' variables and RTM2KAFKA_*
// are not ours; values are never shown.
func TestUnknownVariableWarning(t *testing.T) {
	env := map[string]string{
		"RTM_ENDPIONT": "gw-value-1:13315", "KAFKA_BROKER": "k-value-2:9092", "SPOOL_DIRR": "/d", "HTTP_ADR": "x",
		"RTM_FROBNICATE_EVERYTHING": "v3",
		"KAFKA_PORT":                "19092", "KAFKA_CONTROLLER_PORT": "1", "KAFKA_VERSION": "4", "KAFKA_HEAP": "1g",
		"RTM2KAFKA_PYTHON": "py", "RTM2KAFKA_STATE": "st", "SIM_RATE": "5", "LOG_LEVEL": "info", "HOME": "/root",
	}
	_, _, errOut := run(t, env, "ctl") // a usage error, after the warnings
	for _, want := range []string{
		"unknown variable RTM_ENDPIONT is ignored (did you mean RTM_ENDPOINT?)",
		"unknown variable KAFKA_BROKER is ignored (did you mean KAFKA_BROKERS?)",
		"unknown variable SPOOL_DIRR is ignored (did you mean SPOOL_DIR?)",
		"unknown variable HTTP_ADR is ignored (did you mean HTTP_ADDR?)",
		"unknown variable RTM_FROBNICATE_EVERYTHING is ignored\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	for _, not := range []string{"KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "KAFKA_VERSION", "KAFKA_HEAP", "RTM2KAFKA", "SIM_RATE", "LOG_LEVEL", "HOME", "value-", "v3"} {
		if strings.Contains(errOut, not) {
			t.Errorf("stderr mentions %q:\n%s", not, errOut)
		}
	}
	// run logs the warnings (JSON stays JSON).
	env = map[string]string{"RTM_ENDPIONT": "x", "LOG_FORMAT": "json"}
	_, _, errOut = run(t, env, "run")
	if !strings.Contains(errOut, `{"time":`) || !strings.Contains(errOut, `"level":"WARN","msg":"unknown variable RTM_ENDPIONT is ignored (did you mean RTM_ENDPOINT?)"`) {
		t.Errorf("run does not log the warning as JSON:\n%s", errOut)
	}
	// Every known variable is quiet.
	env = map[string]string{}
	for k := range knownVars() {
		env[k] = "x"
	}
	if w := unknownVars(env); len(w) != 0 {
		t.Errorf("known variables warned about: %v", w)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"RTM_ENDPIONT", "RTM_ENDPOINT", 1}, {"KAFKA_BROKER", "KAFKA_BROKERS", 1}, {"", "AB", 2}, {"ABC", "ABC", 0}, {"KITTEN", "SITTING", 3}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}

// Secrets never come from the command line: a secret flag is refused (exit
// 2) naming the variable and its *_FILE, and its value is never printed.
func TestSecretFlagsRefused(t *testing.T) {
	for _, c := range []struct{ args, env string }{
		{"run --rtm-secret=hunter2-flag-value", "RTM_SECRET"},
		{"run --kafka-sasl-password hunter2-flag-value", "KAFKA_SASL_PASSWORD"},
		{"run --http-control-token=hunter2-flag-value", "HTTP_CONTROL_TOKEN"},
		{"ctl --kafka-sasl-password=hunter2-flag-value add", "KAFKA_SASL_PASSWORD"},
		{"tail --kafka-sasl-password=hunter2-flag-value", "KAFKA_SASL_PASSWORD"},
		{"sim --rtm-secret=hunter2-flag-value", "RTM_SECRET"},
	} {
		code, out, errOut := run(t, nil, strings.Fields(c.args)...)
		if code != 2 || !strings.Contains(errOut, "set "+c.env+" or "+c.env+"_FILE") {
			t.Errorf("%s: exit %d, stderr %q; want 2 naming %s and %s_FILE", c.args, code, errOut, c.env, c.env)
		}
		if strings.Contains(out+errOut, "hunter2") {
			t.Errorf("%s: the secret is printed: %s", c.args, out+errOut)
		}
	}
	// The *_FILE flags are fine: a path is no secret.
	if code, _, errOut := run(t, nil, "ctl", "--kafka-sasl-password-file", "/nonexistent-file", "add"); code == 2 {
		t.Errorf("--kafka-sasl-password-file refused: %s", errOut)
	}
}

// RTM_ENDPOINT is required for run and checked like every broker address;
// all problems come in one message.
func TestEndpointAndBrokersChecked(t *testing.T) {
	for _, c := range []struct{ endpoint, brokers, want string }{
		{"", "k:9092", "RTM_ENDPOINT: required"},
		{"nohost", "k:9092", "RTM_ENDPOINT: missing the port"},
		{"gw:99999", "k:9092", "RTM_ENDPOINT: the port is not a number"},
		{":13315", "k:9092", "RTM_ENDPOINT: empty host"},
		{"gw:13315", "k:9092,", "KAFKA_BROKERS: entry 2 of 2: empty"},
		{"gw:13315", "k", "KAFKA_BROKERS: entry 1 of 1: missing the port"},
	} {
		env := map[string]string{"RTM_PID": "1", "RTM_SECRET": "s", "RTM_ENDPOINT": c.endpoint, "KAFKA_BROKERS": c.brokers}
		code, _, errOut := run(t, env, "run")
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("RTM_ENDPOINT=%q KAFKA_BROKERS=%q: exit %d, %q; want %q", c.endpoint, c.brokers, code, errOut, c.want)
		}
	}
	// Parse errors and validation errors together, one message.
	env := map[string]string{"RTM_PID": "nope", "RTM_ENDPOINT": "nohost", "KAFKA_BROKERS": "a:1,", "RTM_DEDUP_WINDOW": "forever", "KAFKA_ACKS": "0"}
	_, _, errOut := run(t, env, "run")
	for _, want := range []string{"configuration: 6 problems:", "RTM_PID: invalid value", "RTM_DEDUP_WINDOW: invalid value", "RTM_ENDPOINT: missing the port",
		"KAFKA_BROKERS: entry 2 of 2", "KAFKA_ACKS: want all or one", "RTM_SECRET or RTM_SECRET_FILE: required"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "RTM_PID: required") || strings.Contains(errOut, "forever") {
		t.Errorf("a variable reported twice, or a value shown:\n%s", errOut)
	}
}

// Every bad KAFKA_TOPIC_OVERRIDES entry and a bad HTTP_ADDR are reported
// with the other problems, in one message.
func TestEveryOverrideAndHTTPAddrChecked(t *testing.T) {
	env := map[string]string{"RTM_PID": "x", "RTM_SECRET": "s", "RTM_ENDPOINT": "gw:1",
		"KAFKA_TOPIC_OVERRIDES": "events:a/b,foo.bar:x,control:ok.name,zz:y", "HTTP_ADDR": "nonsense"}
	code, _, errOut := run(t, env, "run")
	for _, want := range []string{"configuration: 5 problems:", "RTM_PID: invalid value",
		`KAFKA_TOPIC_OVERRIDES: override "events": topic "a/b": invalid character`,
		`KAFKA_TOPIC_OVERRIDES: override "foo.bar": unknown key`, `KAFKA_TOPIC_OVERRIDES: override "zz": unknown key`,
		"HTTP_ADDR: missing the port: want host:port"} {
		if code != exitFailed || !strings.Contains(errOut, want) {
			t.Errorf("exit %d, stderr lacks %q:\n%s", code, want, errOut)
		}
	}
	// Entries that are fine alone can still collide: reported once.
	env["KAFKA_TOPIC_OVERRIDES"], env["RTM_PID"], env["HTTP_ADDR"] = "control:same,deadletter:same", "1", "127.0.0.1:0"
	if _, _, errOut := run(t, env, "run"); !strings.Contains(errOut, `configuration: KAFKA_TOPIC_OVERRIDES: topic "same" is used for both`) {
		t.Errorf("colliding overrides: %s", errOut)
	}
	// ctl and tail name every bad entry too.
	for _, args := range [][]string{{"ctl", "show"}, {"tail"}} {
		code, _, errOut := run(t, map[string]string{"KAFKA_TOPIC_OVERRIDES": "events:a/b,foo.bar:x"}, args...)
		if code != exitFailed || !strings.Contains(errOut, `override "events"`) || !strings.Contains(errOut, `override "foo.bar"`) {
			t.Errorf("%v: exit %d, %s", args, code, errOut)
		}
	}

	for addr, want := range map[string]string{
		"127.0.0.1:0": "", ":9464": "", "[::1]:9464": "", "localhost:9464": "", "0.0.0.0:9464": "",
		"nonsense": "HTTP_ADDR: missing the port", "127.0.0.1:99999": "HTTP_ADDR: the port is not a number from 0 to 65535",
		"127.0.0.1:http": "HTTP_ADDR: the port is not a number", "a:b:c": "HTTP_ADDR: want host:port",
	} {
		cfg := &RunConfig{}
		if err := loadConfig(cfg, map[string]string{"RTM_PID": "1", "RTM_SECRET": "s", "RTM_ENDPOINT": "gw:1", "HTTP_ADDR": addr}, nil); err != nil {
			t.Fatal(err)
		}
		_, err := cfg.validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("HTTP_ADDR=%s: %v", addr, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("HTTP_ADDR=%s: %v; want %q", addr, err, want)
		}
	}
}

// Flags may follow the positional arguments (Go's flag package stops at the
// first one): "ctl add --gids 3" is "ctl --gids 3 add"; after "--"
// nothing is a flag, and a flag's value is never taken for OP.
func TestFlagsAfterArguments(t *testing.T) {
	parse := func(args ...string) (*cli, *string, *bool, []string) {
		t.Helper()
		cl := newCLI(ctlSpec, &KafkaConfig{})
		gids := cl.List("gids", "")
		p2p := cl.Bool("p2p", false, "")
		cl.String("id", "", "")
		if err := cl.Parse(args, io.Discard); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		return cl, gids, p2p, cl.Args()
	}
	for _, args := range [][]string{
		{"--gids", "3", "--p2p=false", "add"},
		{"add", "--gids", "3", "--p2p=false"},
		{"--gids", "3", "add", "--p2p=false"},
		{"add", "--gids=3", "-p2p=false"},
		{"--gids", "3", "--p2p=false", "--", "add"},
	} {
		cl, gids, p2p, rest := parse(args...)
		if *gids != "3" || *p2p || !cl.Set("p2p") || len(rest) != 1 || rest[0] != "add" {
			t.Errorf("%q: gids %q p2p %v (set %v) args %q; want 3, false (set), [add]", args, *gids, *p2p, cl.Set("p2p"), rest)
		}
	}
	// A value that looks like an OP stays the flag's value; after "--",
	// flags are arguments.
	cl, _, _, rest := parse("--id", "add", "remove")
	if id := cl.fs.Lookup("id").Value.String(); id != "add" || len(rest) != 1 || rest[0] != "remove" {
		t.Errorf("--id add remove: id %q, args %q", id, rest)
	}
	_, gids, _, rest := parse("add", "--", "--gids", "3")
	if *gids != "" || len(rest) != 3 || rest[1] != "--gids" {
		t.Errorf("add -- --gids 3: gids %q, args %q", *gids, rest)
	}
}
