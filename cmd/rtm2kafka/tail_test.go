package main

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/vmihailenco/msgpack/v5"
)

// tail shows each field once: the body of an audio or file message is the
// description the record already carries decoded, and a file's attrs are
// shown once.
func TestTailEachFieldOnce(t *testing.T) {
	for _, c := range []struct{ value, once, gone string }{
		{`{"scope":"p2p","kind":"audio","from":1,"to":2,"mid":3,"msg":"{\"rtext\":\"hello there\"}","audio":{"source_lang":"en","recognized_text":"hello there","duration_ms":900}}`,
			"hello there", ""},
		{`{"scope":"group","kind":"file","from":1,"to":2,"mid":3,"msg":"{\"url\":\"https://f/x.pdf\"}","attrs":"{\"custom\":{\"note\":\"n1\"}}","file":{"url":"https://f/x.pdf","size":4,"custom_attrs":"{\"note\":\"n1\"}"}}`,
			"https://f/x.pdf", "custom_attrs"},
	} {
		line := formatRecord(&kgo.Record{Topic: "rtm.x", Key: []byte("2"), Value: []byte(c.value), Timestamp: time.Unix(0, 0)}, false)
		if n := strings.Count(line, c.once); n != 1 {
			t.Errorf("%q appears %d times in %s", c.once, n, line)
		}
		if c.gone != "" && strings.Contains(line, c.gone) {
			t.Errorf("%q shown: %s", c.gone, line)
		}
		if strings.Count(line, "n1") > 1 {
			t.Errorf("attrs shown twice: %s", line)
		}
	}
}

// The text log writes structs as JSON, never Go's {Field:value}.
func TestLogNoGoStructs(t *testing.T) {
	var b strings.Builder
	log := newLogger(&b, LogConfig{Level: "info", Format: "text"})
	log.Info("stats", "stats", struct {
		Sent     int `json:"sent"`
		Answered int
	}{1, 2}, "brokers", []string{"a:1", "b:2"}, "err", errTest{})
	out := b.String()
	if !strings.Contains(out, `stats="{\"sent\":1,\"Answered\":2}"`) || !strings.Contains(out, `brokers="[\"a:1\",\"b:2\"]"`) || !strings.Contains(out, "err=boom") {
		t.Errorf("log line: %s", out)
	}
}

type errTest struct{}

func (errTest) Error() string { return "boom" }

// tail shows what the record holds: false, 0 and "" are values, top-level
// and nested; only absent keys are absent.
func TestTailShowsZeroValues(t *testing.T) {
	for _, c := range []struct {
		name, value string
		want, not   []string
	}{
		{"a failed control result",
			`{"id":"c-1","ok":false,"error":"rtm error 200032","listen":{"p2p":false,"group":true,"room":false,"ev":true,"gids":[],"rids":[],"uids":[7],"events":[]},"applied_at":1717000100000,"offset":0}`,
			[]string{" ok=false", ` error="rtm error 200032"`, ` offset=0`, `listen={"ev":true,"events":[],"gids":[],"group":true,"p2p":false,"rids":[],"room":false,"uids":[7]}`}, nil},
		{"an accepted control result",
			`{"id":"c-2","ok":true,"error":"","listen":{"p2p":true},"applied_at":1,"offset":5}`,
			[]string{" ok=true", ` error=""`, ` offset=5`}, nil},
		{"mtype 0", `{"scope":"p2p","kind":"message","from":1,"to":2,"mid":3,"mtype":0,"msg":"x"}`,
			[]string{" mtype=0 ", " mid=3 ", ` msg="x"`}, nil},
		{"an event with empty data", `{"scope":"event","kind":"logout","uid":1,"time":5,"event":"logout","data":""}`,
			[]string{` data=""`, ` event="logout"`}, nil},
		{"an event without data", `{"scope":"event","kind":"logout","uid":1,"time":5,"event":"logout"}`,
			[]string{` event="logout"`}, []string{"data="}},
		{"null is shown as null", `{"scope":"p2p","kind":"chat","from":1,"to":2,"attrs":null,"msg":"x"}`,
			[]string{" attrs=null "}, nil},
	} {
		line := formatRecord(&kgo.Record{Topic: "rtm.x", Key: []byte("2"), Value: []byte(c.value), Timestamp: time.Unix(0, 0)}, false)
		for _, w := range c.want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: line lacks %q: %s", c.name, w, line)
			}
		}
		for _, n := range c.not {
			if strings.Contains(line, n) {
				t.Errorf("%s: line has %q: %s", c.name, n, line)
			}
		}
	}
	// msgpack records too: their integers decode as int8, uint64, ….
	value, err := msgpack.Marshal(map[string]any{"scope": "p2p", "kind": "chat", "from": 1, "to": 2, "mtype": 0, "ok": false, "note": "",
		"file": map[string]any{"size": 0, "url": ""}})
	if err != nil {
		t.Fatal(err)
	}
	line := formatRecord(&kgo.Record{Topic: "rtm.x", Key: []byte("2"), Value: value, Timestamp: time.Unix(0, 0)}, false)
	for _, w := range []string{" mtype=0", " ok=false", ` note=""`, `file={"size":0,"url":""}`} {
		if !strings.Contains(line, w) {
			t.Errorf("msgpack: line lacks %q: %s", w, line)
		}
	}
}
