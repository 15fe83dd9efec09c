package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/integration/kafkatest"
	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// Router returns the default router for prefix (the topic names a daemon
// with KAFKA_TOPIC_PREFIX=prefix uses).
func Router(t testing.TB, prefix string) *topics.Router {
	t.Helper()
	r := &topics.Router{Prefix: prefix}
	if err := r.Init(); err != nil {
		t.Fatalf("Router(%q): %v", prefix, err)
	}
	return r
}

// Prefix returns a topic prefix unique to the test (kafkatest.UniquePrefix
// without its trailing "-") and deletes every topic the daemon creates under
// it when the test ends (unless KAFKATEST_KEEP_TOPICS=1).
func Prefix(t testing.TB, brokers []string) string {
	t.Helper()
	p := strings.TrimSuffix(kafkatest.UniquePrefix(t), "-")
	if os.Getenv(kafkatest.EnvKeepTopics) == "1" {
		return p
	}
	r := Router(t, p)
	t.Cleanup(func() {
		names := append(r.Topics(), r.DeadLetterTopic(), r.ControlTopic(), r.ControlResultsTopic())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = testkit.DeleteTopics(ctx, brokers, names...) // best effort: the broker may be gone (a private one)
	})
	return p
}

// ReadTopic reads every record of topic from the first offset of each
// partition up to the partition's end offset as of the call
// ([testkit.ReadToEnd]). Records are in partition order, partitions one
// after the other. A topic that does not exist reads as empty.
func ReadTopic(ctx context.Context, brokers []string, topic string) ([]*kgo.Record, error) {
	recs, err := testkit.ReadToEnd(ctx, brokers, topic)
	if err != nil {
		return nil, fmt.Errorf("integration: read %s: %w", topic, err)
	}
	return recs, nil
}

// ReadTopics reads every topic with [ReadTopic] and decodes each record
// with [DecodeRecord]; it fails the test on any error.
func ReadTopics(t testing.TB, brokers []string, names []string) []Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []Record
	for _, name := range names {
		msgs, err := ReadTopic(ctx, brokers, name)
		if err != nil {
			t.Fatalf("ReadTopics: %v", err)
		}
		for i := range msgs {
			r, err := DecodeRecord(msgs[i])
			if err != nil {
				t.Fatalf("ReadTopics: %s/%d@%d: %v", name, msgs[i].Partition, msgs[i].Offset, err)
			}
			out = append(out, r)
		}
	}
	return out
}

// DataTopics returns the 15 message topics and the events topic of prefix.
func DataTopics(t testing.TB, prefix string) []string { return Router(t, prefix).Topics() }

// Record is one data record as a consumer sees it.
type Record struct {
	Topic     string
	Partition int
	Offset    int64
	Key       string
	Headers   map[string]string // each header's last value
	Value     Value
	Raw       []byte // the record value
}

// Value is the JSON value of a message or event record (docs/records.md);
// integers are int64, optional strings pointers (nil when absent).
type Value struct {
	Scope      string          `json:"scope"`
	Kind       string          `json:"kind"`
	PID        int64           `json:"pid"`
	From       int64           `json:"from"`
	To         int64           `json:"to"`
	MType      int64           `json:"mtype"`
	MID        int64           `json:"mid"`
	Msg        *string         `json:"msg"`
	MsgB64     *string         `json:"msg_b64"`
	Attrs      *string         `json:"attrs"`
	AttrsB64   *string         `json:"attrs_b64"`
	MTime      int64           `json:"mtime"`
	ReceivedAt int64           `json:"received_at"`
	Audio      json.RawMessage `json:"audio"`
	File       json.RawMessage `json:"file"`
	Event      string          `json:"event"`
	UID        int64           `json:"uid"`
	Time       int64           `json:"time"`
	Endpoint   string          `json:"endpoint"`
	Data       *string         `json:"data"`
	DataB64    *string         `json:"data_b64"`
}

// Body returns the message body bytes (msg or decoded msg_b64).
func (v *Value) Body() ([]byte, error) { return strOrB64(v.Msg, v.MsgB64, "msg") }

// AttrsBytes returns the attrs bytes (attrs or decoded attrs_b64).
func (v *Value) AttrsBytes() ([]byte, error) { return strOrB64(v.Attrs, v.AttrsB64, "attrs") }

func strOrB64(s, b64 *string, name string) ([]byte, error) {
	switch {
	case s != nil && b64 != nil:
		return nil, fmt.Errorf("both %s and %s_b64 present", name, name)
	case s != nil:
		return []byte(*s), nil
	case b64 != nil:
		return base64.StdEncoding.DecodeString(*b64)
	}
	return nil, fmt.Errorf("neither %s nor %s_b64 present", name, name)
}

// DecodeRecord decodes a data record's JSON value (unknown fields are
// errors, so a schema change shows up) and its headers.
func DecodeRecord(m *kgo.Record) (Record, error) {
	r := Record{Topic: m.Topic, Partition: int(m.Partition), Offset: m.Offset, Key: string(m.Key),
		Headers: make(map[string]string, len(m.Headers)), Raw: m.Value}
	for _, h := range m.Headers {
		r.Headers[h.Key] = string(h.Value)
	}
	dec := json.NewDecoder(bytes.NewReader(m.Value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r.Value); err != nil {
		return r, fmt.Errorf("decode value %q: %w", m.Value, err)
	}
	return r, nil
}

// HeaderInt returns header name as an int64 (0 and false when absent or
// not a number).
func (r *Record) HeaderInt(name string) (int64, bool) {
	v, ok := r.Headers[name]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// PrivateKafka is a broker of one test's own; see [testkit.PrivateKafka].
type PrivateKafka = testkit.PrivateKafka

// StartPrivateKafka starts a private broker; see [testkit.StartPrivateKafka].
func StartPrivateKafka(t testing.TB) *PrivateKafka { return testkit.StartPrivateKafka(t) }
