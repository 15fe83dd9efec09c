package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/configuration.md from the config structs")

// configDoc renders the configuration reference from the config structs,
// so that it cannot drift from what the binary reads.
func configDoc() string {
	var b strings.Builder
	b.WriteString(`# Configuration

Every setting is an environment variable; each also has a flag of the same name in lower case
with dashes (` + "`RTM_ENDPOINT` → `--rtm-endpoint`" + `) that overrides the environment (secrets: environment
or ` + "`*_FILE`" + ` only). A missing or invalid setting stops the start with the variable's name and
what it expects, never its value. ` + "`*_FILE`" + ` variables hold the path of a file whose content
is the secret. A variable with a default that is set but empty is an error (unset it to get the
default), except where the table says what empty means (` + "`HTTP_ADDR`" + `).

This file is generated from the code: ` + "`go test ./cmd/rtm2kafka -run TestConfigDoc -update-docs`" + `.
`)
	section := func(title string, cfg any) {
		fmt.Fprintf(&b, "\n## %s\n\n| variable | default | meaning |\n| --- | --- | --- |\n", title)
		for _, v := range describe(cfg) {
			def := "—"
			if v.Default != "" {
				def = "`" + v.Default + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Key, def, strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;").Replace(v.Help))
		}
	}
	section("`rtm2kafka run`", &RunConfig{})
	section("`rtm2kafka sim`", &SimConfig{})
	return b.String()
}

// TestConfigDoc: docs/configuration.md is what the config structs say.
func TestConfigDoc(t *testing.T) {
	const path = "../../docs/configuration.md"
	want := configDoc()
	if *updateDocs {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is out of date with the config structs; run: go test ./cmd/rtm2kafka -run TestConfigDoc -update-docs", path)
	}
}
