package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// TailCommand prints the records of the rtm topics, readably for a person,
// as they arrive.
type TailCommand struct {
	Stdout, Stderr io.Writer
	Env            map[string]string
}

// Run consumes every data topic (and the dead-letter and control-results
// topics) without a consumer group and prints each record on one line.
func (c *TailCommand) Run(ctx context.Context, args []string) error {
	cfg := &KafkaConfig{}
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	vals := bindFlags(fs, cfg)
	fromStart := fs.Bool("from-beginning", false, "print the records already in the topics, not only new ones")
	max := fs.Int("n", 0, "stop after this many records (0 = run until interrupted)")
	only := fs.String("topics", "", "comma-separated topics to read (default: every rtm topic)")
	raw := fs.Bool("raw", false, "print record values as they are, without formatting")
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, `Usage: rtm2kafka tail [flags]

Prints the records the bridge writes, one line each: time, topic, partition
and offset, key, then the record's fields with the message body last.
Binary bodies are shown as base64. Reads every partition of every rtm topic
directly (no consumer group, nothing committed).

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := loadConfig(cfg, c.Env, vals); err != nil {
		return err
	}
	router, err := cfg.router(topics.KeyTo)
	if err != nil {
		return err
	}
	names := append(router.Topics(), router.DeadLetterTopic(), router.ControlResultsTopic())
	if *only != "" {
		names = splitList(*only)
	}
	opts, err := cfg.connOpts()
	if err != nil {
		return err
	}
	start := kgo.NewOffset().AtEnd()
	if *fromStart {
		start = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(names...), kgo.ConsumeResetOffset(start))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("list topics on %s: %s", strings.Join(cfg.Brokers, ","), bridge.DescribeKafkaError(err))
	}
	parts, topicsFound := 0, 0
	for _, t := range td.Sorted() {
		if t.Err != nil {
			fmt.Fprintf(c.Stderr, "tail: topic %s: %v\n", t.Topic, t.Err)
			continue
		}
		topicsFound++
		parts += len(t.Partitions)
	}
	if topicsFound == 0 {
		return fmt.Errorf("none of the topics exist yet (%s); start the bridge first", strings.Join(names, ", "))
	}
	fmt.Fprintf(c.Stderr, "tail: reading %d partitions of %d topics from %s\n", parts, topicsFound, map[bool]string{true: "the beginning", false: "now on"}[*fromStart])
	printed := 0
	for *max == 0 || printed < *max {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			fmt.Fprintf(c.Stderr, "tail: %s/%d: %s\n", t, p, bridge.DescribeKafkaError(err))
		})
		fs.EachRecord(func(r *kgo.Record) {
			if *max == 0 || printed < *max {
				fmt.Fprintln(c.Stdout, formatRecord(r, *raw))
				printed++
			}
		})
	}
	return nil
}

// formatRecord renders one record on one line: fields first, body last.
func formatRecord(m *kgo.Record, raw bool) string {
	head := fmt.Sprintf("%s %s[%d]@%d key=%s", m.Timestamp.Local().Format("15:04:05.000"), m.Topic, m.Partition, m.Offset, m.Key)
	if raw {
		return head + " " + string(m.Value)
	}
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(m.Value))
	dec.UseNumber() // ids above 2^53 must print exactly
	if err := dec.Decode(&v); err != nil {
		if err := msgpack.Unmarshal(m.Value, &v); err != nil {
			return head + " value=" + quoteBody(m.Value)
		}
	}
	var b strings.Builder
	b.WriteString(head)
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var body string
	for _, k := range keys {
		switch k {
		case "msg", "msg_b64", "raw_b64":
			body = fmt.Sprintf(" %s=%s", k, quoteBody(bodyBytes(v[k])))
			continue
		case "scope", "kind", "pid", "received_at":
			continue // the topic and headers say it; keep the line short
		}
		if isEmpty(v[k]) {
			continue
		}
		if obj, ok := v[k].(map[string]any); ok {
			for ik, iv := range obj {
				if isEmpty(iv) {
					delete(obj, ik)
				}
			}
		}
		val, _ := json.Marshal(v[k]) // values came from a decoder, so they marshal
		fmt.Fprintf(&b, " %s=%s", k, val)
	}
	b.WriteString(body)
	return b.String()
}

func bodyBytes(v any) []byte {
	switch x := v.(type) {
	case string:
		return []byte(x)
	case []byte:
		return x
	}
	out, _ := json.Marshal(v) // a decoded value always marshals
	return out
}

// quoteBody shows a body on one line, shortened to 120 bytes; non-UTF-8
// bytes are shown as base64.
func quoteBody(b []byte) string {
	const max = 120
	suffix := ""
	if len(b) > max {
		b, suffix = b[:max], fmt.Sprintf("…(+%d bytes)", len(b)-max)
	}
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return "b64:" + base64.StdEncoding.EncodeToString(b) + suffix
	}
	q, _ := json.Marshal(string(b))
	return string(q) + suffix
}

// isEmpty reports values not worth a column: "", 0, false, null.
func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case json.Number:
		return x == "0"
	case int64:
		return x == 0
	case uint64:
		return x == 0
	case int8:
		return x == 0
	}
	return false
}
