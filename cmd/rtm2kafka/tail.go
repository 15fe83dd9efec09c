package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
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
	cl := newCLI(tailSpec, cfg)
	fromStart := cl.Bool("from-beginning", false, "print the records already in the topics, not only new ones")
	max := cl.Int("n", 0, "stop after this many records (0 = run until interrupted)")
	only := cl.List("topics", "topics to read (default: every rtm topic)")
	raw := cl.Bool("raw", false, "print record values as they are, without formatting")
	if err := cl.Parse(args, c.Stdout); err != nil {
		return err
	}
	if len(cl.Args()) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, cl.Args()[0])
	}
	if err := cl.Load(c.Env); err != nil {
		return err
	}
	router, err := cfg.router(topics.KeyTo)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	names := append(router.Topics(), router.DeadLetterTopic(), router.ControlResultsTopic())
	if *only != "" {
		names = splitList(*only)
	}
	opts, err := cfg.connOpts()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	start := kgo.NewOffset().AtEnd()
	if *fromStart {
		start = kgo.NewOffset().AtStart()
	}
	kc, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(names...), kgo.ConsumeResetOffset(start))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer kc.Close()
	td, err := kadm.NewClient(kc).ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("list topics on %s: %w", strings.Join(cfg.Brokers, ","), bridge.Described(err))
	}
	parts, topicsFound := 0, 0
	var missing []string
	for _, t := range td.Sorted() {
		if t.Err != nil {
			missing = append(missing, t.Topic)
			continue
		}
		topicsFound++
		parts += len(t.Partitions)
	}
	if topicsFound == 0 {
		return fmt.Errorf("none of the %d topics exists yet (e.g. %s): start the bridge first, or check KAFKA_TOPIC_PREFIX", len(names), names[0])
	}
	if len(missing) > 0 {
		fmt.Fprintf(c.Stderr, "rtm2kafka tail: skipping %d topics not created yet: %s\n", len(missing), strings.Join(missing, ", "))
	}
	fmt.Fprintf(c.Stderr, "rtm2kafka tail: reading %d partitions of %d topics from %s\n", parts, topicsFound, map[bool]string{true: "the beginning", false: "now on"}[*fromStart])
	printed := 0
	for *max == 0 || printed < *max {
		fs := kc.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			fmt.Fprintf(c.Stderr, "rtm2kafka tail: %s/%d: %s\n", t, p, bridge.DescribeKafkaError(err))
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
// Every field present is shown with its value, false, 0, "" and null
// included, so that a record without a field and one with an empty field
// print differently.
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
	_, hasAudio := v["audio"].(map[string]any)
	_, hasFile := v["file"].(map[string]any)
	for _, k := range keys {
		switch k {
		case "msg", "msg_b64":
			if hasAudio || hasFile {
				// The body is the audio or file description the record
				// already carries decoded: show each field once.
				body = fmt.Sprintf(" %s=(the %s above)", k, map[bool]string{true: "audio", false: "file"}[hasAudio])
				continue
			}
			body = fmt.Sprintf(" %s=%s", k, quoteBody(bodyBytes(v[k])))
			continue
		case "raw_b64":
			body = fmt.Sprintf(" %s=%s", k, quoteBody(bodyBytes(v[k])))
			continue
		case "scope", "kind", "pid", "received_at":
			continue // the topic and headers say it; keep the line short
		}
		// Every value the record holds is shown, false, 0, "" and null
		// included: only an absent key is absent.
		if obj, ok := v[k].(map[string]any); ok && k == "file" {
			if _, ok := v["attrs"]; ok {
				// decoded from attrs, which is shown as is
				delete(obj, "rtm_attrs")
				delete(obj, "custom_attrs")
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
