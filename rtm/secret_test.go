package rtm

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"log/slog"
	"strings"
	"testing"
)

// TestSecretMarshalRedacted: a Secret inside anything that is marshalled
// (a /status body, a config dump, a JSON log line) shows "[redacted]",
// never the key; string(s) still gives the key to the signer.
func TestSecretMarshalRedacted(t *testing.T) {
	const key = "json-secret-key-0123"
	s := Secret(key)
	type cfg struct {
		PID    int64
		Secret Secret
		Ptr    *Secret `json:",omitempty"`
		List   []Secret
		ByName map[string]Secret
	}
	// (A Secret as a map key is not covered: encoding/json writes keys of
	// string kind as they are, without MarshalText.)
	c := cfg{PID: 1, Secret: s, Ptr: &s, List: []Secret{s, s}, ByName: map[string]Secret{"rtm": s}}
	var outs []string
	for _, v := range []any{s, &s, c, &c, map[string]any{"s": s}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T): %v", v, err)
		}
		outs = append(outs, string(b))
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("marshalled config is not valid JSON: %v\n%s", err, b)
	}
	if back["Secret"] != "[redacted]" {
		t.Errorf("config JSON Secret = %v, want \"[redacted]\"", back["Secret"])
	}
	txt, err := s.MarshalText()
	if err != nil || string(txt) != "[redacted]" {
		t.Errorf("MarshalText = %q, %v", txt, err)
	}
	type xmlCfg struct{ S Secret }
	x, err := xml.Marshal(xmlCfg{s})
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(x))
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("cfg", "cfg", c, "s", s)
	outs = append(outs, logged.String())
	for _, o := range outs {
		if strings.Contains(o, key) {
			t.Fatalf("secret leaked: %s", o)
		}
		if !strings.Contains(o, "[redacted]") {
			t.Errorf("no [redacted] marker in %s", o)
		}
	}
	if string(s) != key {
		t.Fatal("string(s) must still give the key")
	}
}
