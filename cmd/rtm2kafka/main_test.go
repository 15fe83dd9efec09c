package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runMain(context.Background(), args, &out, &errb, env)
	return code, out.String(), errb.String()
}

func TestRunHelpListsEveryVariable(t *testing.T) {
	_, out, _ := run(t, nil, "run", "--help")
	for _, v := range describe(&RunConfig{}) {
		if !strings.Contains(out, "\n  "+v.Key+" ") {
			t.Errorf("run --help does not list %s", v.Key)
		}
	}
}

// A bad configuration stops the start naming each variable and what it
// expects, and never echoes a value (which could be a secret).
func TestConfigErrorsNameVariablesNotValues(t *testing.T) {
	env := map[string]string{
		"RTM_PID":             "not-a-number-SECRETLOOKING",
		"RTM_SECRET":          "hunter2-very-secret",
		"KAFKA_SASL_PASSWORD": "sasl-pass-xyz",
		"RTM_DEDUP_WINDOW":    "forever",
	}
	code, out, errOut := run(t, env, "run")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errOut)
	}
	for _, want := range []string{"RTM_PID: invalid value, want an integer", "RTM_DEDUP_WINDOW: invalid value, want a duration"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
	for _, leak := range []string{"SECRETLOOKING", "hunter2", "sasl-pass", "forever"} {
		if strings.Contains(out+errOut, leak) {
			t.Errorf("output leaks %q: %s", leak, errOut)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := &RunConfig{}
	if err := loadConfig(cfg, map[string]string{
		"RTM_AES_BITS": "192", "RTM_LISTEN_ALL": "p2p,bogus", "KAFKA_KEY": "sideways",
		"KAFKA_FORMAT": "xml", "KAFKA_ACKS": "0", "LOG_LEVEL": "loud", "KAFKA_TOPIC_PREFIX": "bad topic",
		"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p4ss",
	}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := cfg.validate()
	if err == nil {
		t.Fatal("validate accepted a bad configuration")
	}
	for _, want := range []string{"RTM_PID", "RTM_SECRET or RTM_SECRET_FILE", "RTM_AES_BITS", "RTM_LISTEN_ALL", "KAFKA_KEY",
		"KAFKA_FORMAT", "KAFKA_ACKS", "LOG_LEVEL", "KAFKA_TOPIC_PREFIX"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "p4ss") {
		t.Errorf("error leaks the SASL password: %v", err)
	}
}

func TestValidateDefaults(t *testing.T) {
	cfg := &RunConfig{}
	if err := loadConfig(cfg, map[string]string{"RTM_PID": "1000001", "RTM_SECRET": "s", "RTM_ENDPOINT": "gw:13315"}, nil); err != nil {
		t.Fatal(err)
	}
	s, err := cfg.validate()
	if err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	if want := (rtm.ListenState{P2P: true, Group: true, Room: true, Ev: true}); !s.listen.Equal(want) {
		t.Errorf("default listen state %+v, want all four flags", s.listen)
	}
	if len(s.kafkaOpts) != 0 {
		t.Errorf("no TLS/SASL configured, yet %d client options were built", len(s.kafkaOpts))
	}
	if got := s.router.Topic(&rtm.Push{Scope: rtm.ScopeGroup, Kind: rtm.KindFile}); got != "rtm.group.file" {
		t.Errorf("default topic %q", got)
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	c := &RunCommand{Stderr: &bytes.Buffer{}, Env: map[string]string{"RTM_PID": "1", "RTM_SECRET": "s", "RTM_ENDPOINT": "gw:1", "KAFKA_TOPIC_PREFIX": "fromenv"}}
	if err := c.ParseFlags([]string{"--kafka-topic-prefix", "fromflag", "--rtm-pid", "42"}); err != nil {
		t.Fatal(err)
	}
	if c.Config.TopicPrefix != "fromflag" || c.Config.RTMPID != 42 {
		t.Errorf("flags did not override: prefix %q pid %d", c.Config.TopicPrefix, c.Config.RTMPID)
	}
}

func TestParseListenAll(t *testing.T) {
	cases := map[string]rtm.ListenState{
		"p2p,group,room,ev": {P2P: true, Group: true, Room: true, Ev: true},
		"all":               {P2P: true, Group: true, Room: true, Ev: true},
		"none":              {},
		"":                  {},
		" Group , ev ":      {Group: true, Ev: true},
	}
	for in, want := range cases {
		got, err := parseListenAll(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseListenAll(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if _, err := parseListenAll("p2p,chat"); err == nil || !strings.Contains(err.Error(), `"chat"`) {
		t.Errorf("unknown flag accepted or error unclear: %v", err)
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/secret"
	if err := os.WriteFile(path, []byte("  from-file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &RunConfig{}
	if err := loadConfig(cfg, map[string]string{"RTM_PID": "7", "RTM_SECRET_FILE": path, "RTM_ENDPOINT": "gw:13315"}, nil); err != nil {
		t.Fatal(err)
	}
	s, err := cfg.validate()
	if err != nil {
		t.Fatal(err)
	}
	if s.secret != "from-file-secret" {
		t.Errorf("secret from file not trimmed/read")
	}
	cfg = &RunConfig{}
	err = loadConfig(cfg, map[string]string{"RTM_PID": "7", "RTM_SECRET_FILE": dir + "/missing"}, nil)
	if err == nil || !strings.Contains(err.Error(), "RTM_SECRET_FILE: cannot read file") {
		t.Errorf("missing secret file: %v", err)
	}
}

// A variable set but empty is not its default: HTTP_ADDR= (or --http-addr=)
// disables the HTTP server; for the others, which an empty value cannot
// mean anything for, it is an error naming the variable.
func TestEmptyValues(t *testing.T) {
	good := map[string]string{"RTM_PID": "1", "RTM_SECRET": "s", "RTM_ENDPOINT": "gw:1", "HTTP_ADDR": "127.0.0.1:1"}
	with := func(kv ...string) map[string]string {
		env := map[string]string{}
		for k, v := range good {
			env[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	for _, c := range []struct {
		env  map[string]string
		args []string
	}{
		{with("HTTP_ADDR", ""), nil},
		{good, []string{"--http-addr="}},
		{good, []string{"--http-addr", ""}},
	} {
		cmd := &RunCommand{Stderr: &bytes.Buffer{}, Env: c.env}
		if err := cmd.ParseFlags(c.args); err != nil {
			t.Errorf("HTTP_ADDR=%q %q: %v", c.env["HTTP_ADDR"], c.args, err)
			continue
		}
		if cmd.Config.HTTPAddr != "" {
			t.Errorf("HTTP_ADDR=%q %q: HTTP_ADDR is %q, want empty (disabled)", c.env["HTTP_ADDR"], c.args, cmd.Config.HTTPAddr)
		}
	}
	// Unset, the default applies.
	env := with()
	delete(env, "HTTP_ADDR")
	cmd := &RunCommand{Stderr: &bytes.Buffer{}, Env: env}
	if err := cmd.ParseFlags(nil); err != nil || cmd.Config.HTTPAddr != "127.0.0.1:9464" {
		t.Errorf("HTTP_ADDR unset: %q, %v; want the default", cmd.Config.HTTPAddr, err)
	}

	for _, c := range []struct {
		env        map[string]string
		args       []string
		want, also string
	}{
		{with("KAFKA_TOPIC_PREFIX", ""), nil, "KAFKA_TOPIC_PREFIX: set but empty: give a value, or unset it for the default (rtm)", ""},
		{good, []string{"--kafka-topic-prefix="}, "KAFKA_TOPIC_PREFIX: set but empty", ""},
		{with("KAFKA_BROKERS", "", "LOG_LEVEL", "", "RTM_PID", "x"), nil, "KAFKA_BROKERS: set but empty", "LOG_LEVEL: set but empty"},
		{with("RTM_LISTEN_ALL", "", "KAFKA_ACKS", ""), nil, "RTM_LISTEN_ALL: set but empty", "KAFKA_ACKS: set but empty"},
	} {
		cmd := &RunCommand{Stderr: &bytes.Buffer{}, Env: c.env}
		err := cmd.ParseFlags(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.also) {
			t.Errorf("%v %q: %v; want %q", c.env, c.args, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "KAFKA_BROKERS: required") {
			t.Errorf("KAFKA_BROKERS reported twice: %v", err)
		}
	}
	// ctl and tail read the same Kafka variables the same way.
	for _, cmd := range []string{"ctl", "tail"} {
		args := []string{cmd}
		if cmd == "ctl" {
			args = append(args, "show")
		}
		// Bounded: without the check, tail would read the "rtm" topics until
		// interrupted.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var out, errb bytes.Buffer
		code := runMain(ctx, args, &out, &errb, map[string]string{"KAFKA_TOPIC_PREFIX": ""})
		cancel()
		if errOut := errb.String(); code != exitFailed || !strings.Contains(errOut, "KAFKA_TOPIC_PREFIX: set but empty") {
			t.Errorf("%s with KAFKA_TOPIC_PREFIX=: exit %d, %q", cmd, code, errOut)
		}
	}
}
