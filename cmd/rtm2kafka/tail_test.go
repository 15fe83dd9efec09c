package main

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
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
