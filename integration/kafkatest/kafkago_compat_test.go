package kafkatest_test

// Verifies that the kafka-go calls rtm2kafka relies on work against the real broker
// (Kafka 4.x from scripts/kafka.sh, or KAFKA_BROKERS). Kafka 4 removed old protocol
// versions (KIP-896); see docs/kafka-notes.md for the results and what to use.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"

	"github.com/rtm2kafka/rtm2kafka/integration/kafkatest"
)

func client(brokers []string) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func msgs(n int, tag string) []kafka.Message {
	out := make([]kafka.Message, n)
	for i := range out {
		out[i] = kafka.Message{
			Key:     []byte("key-" + strconv.Itoa(i%7)),
			Value:   []byte(fmt.Sprintf("%s-%04d", tag, i)),
			Headers: []kafka.Header{{Key: "seq", Value: []byte(strconv.Itoa(i))}},
		}
	}
	return out
}

// TestBrokerAPIVersions logs the broker's supported ranges of the APIs kafka-go uses
// and checks the minimum versions kafka-go's hard-coded/negotiated requests need.
func TestBrokerAPIVersions(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	res, err := client(brokers).ApiVersions(ctxT(t, 10*time.Second), &kafka.ApiVersionsRequest{})
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	got := map[int]kafka.ApiVersionsResponseApiKey{}
	for _, k := range res.ApiKeys {
		got[k.ApiKey] = k
	}
	// Versions that kafka-go v0.4.51's Conn (and so Reader with GroupID) sends without
	// negotiation; each must lie inside the broker's range.
	hardCoded := []struct {
		key     int
		name    string
		version int
	}{
		{3, "Metadata (Conn.Brokers/Controller, ReadPartitions fallback)", 1},
		{8, "OffsetCommit (Reader GroupID)", 2},
		{9, "OffsetFetch (Reader GroupID)", 1},
		{10, "FindCoordinator (Reader GroupID)", 0},
		{12, "Heartbeat (Reader GroupID)", 0},
		{13, "LeaveGroup (Reader GroupID)", 0},
		{14, "SyncGroup (Reader GroupID)", 0},
		{16, "ListGroups (Conn)", 1},
		{2, "ListOffsets (Conn.ReadOffsets/Reader)", 1},
	}
	for _, h := range hardCoded {
		k, ok := got[h.key]
		if !ok {
			t.Errorf("broker lacks API %d %s", h.key, h.name)
			continue
		}
		in := h.version >= k.MinVersion && h.version <= k.MaxVersion
		t.Logf("api %2d %-58s kafka-go sends v%d, broker %d..%d ok=%v", h.key, h.name, h.version, k.MinVersion, k.MaxVersion, in)
		if !in {
			t.Errorf("API %d %s: kafka-go sends v%d, broker supports %d..%d", h.key, h.name, h.version, k.MinVersion, k.MaxVersion)
		}
	}
}

func TestClientAdmin(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	c := client(brokers)
	p := kafkatest.UniquePrefix(t)
	topic := p + "admin"
	t.Cleanup(func() {
		_, _ = c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	})

	t.Run("Client.CreateTopics_with_configs", func(t *testing.T) {
		ctx := ctxT(t, 30*time.Second)
		res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
			Topic: topic, NumPartitions: 3, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{
				{ConfigName: "retention.ms", ConfigValue: "-1"},
				{ConfigName: "cleanup.policy", ConfigValue: "delete"},
			},
		}}})
		if err != nil {
			t.Fatalf("CreateTopics: %v", err)
		}
		if err := res.Errors[topic]; err != nil {
			t.Fatalf("CreateTopics %s: %v", topic, err)
		}
		if err := kafkatest.WaitTopic(ctx, brokers, topic, 3); err != nil {
			t.Fatal(err)
		}
		// Creating it again reports TopicAlreadyExists per topic, not as err.
		res, err = c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 3, ReplicationFactor: 1}}})
		if err != nil {
			t.Fatalf("CreateTopics again: %v", err)
		}
		if !errors.Is(res.Errors[topic], kafka.TopicAlreadyExists) {
			t.Fatalf("CreateTopics again: want TopicAlreadyExists, got %v", res.Errors[topic])
		}
	})

	t.Run("Client.Metadata", func(t *testing.T) {
		md, err := c.Metadata(ctxT(t, 10*time.Second), &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			t.Fatalf("Metadata: %v", err)
		}
		if len(md.Brokers) == 0 || md.Controller.ID < 0 {
			t.Errorf("Metadata: brokers %v controller %v", md.Brokers, md.Controller)
		}
		if len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) != 3 {
			t.Fatalf("Metadata topics: %+v", md.Topics)
		}
		// Unknown topic: per-topic error, not a request error.
		md, err = c.Metadata(ctxT(t, 10*time.Second), &kafka.MetadataRequest{Topics: []string{topic + "-missing"}})
		if err != nil {
			t.Fatalf("Metadata(missing): %v", err)
		}
		if len(md.Topics) != 1 || !errors.Is(md.Topics[0].Error, kafka.UnknownTopicOrPartition) {
			t.Fatalf("Metadata(missing): want UnknownTopicOrPartition, got %+v", md.Topics)
		}
	})

	describe := func(t *testing.T, names ...string) map[string]string {
		t.Helper()
		res, err := c.DescribeConfigs(ctxT(t, 10*time.Second), &kafka.DescribeConfigsRequest{
			Resources: []kafka.DescribeConfigRequestResource{{
				ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: names,
			}},
		})
		if err != nil {
			t.Fatalf("DescribeConfigs: %v", err)
		}
		if len(res.Resources) != 1 || res.Resources[0].Error != nil {
			t.Fatalf("DescribeConfigs: %+v", res.Resources)
		}
		out := map[string]string{}
		for _, e := range res.Resources[0].ConfigEntries {
			out[e.ConfigName] = e.ConfigValue
		}
		return out
	}

	t.Run("Client.DescribeConfigs", func(t *testing.T) {
		got := describe(t, "retention.ms", "cleanup.policy")
		if got["retention.ms"] != "-1" || got["cleanup.policy"] != "delete" {
			t.Fatalf("DescribeConfigs: %v", got)
		}
		all := describe(t) // nil ConfigNames = every config
		if len(all) < 10 {
			t.Fatalf("DescribeConfigs(all): only %d entries", len(all))
		}
	})

	t.Run("Client.AlterConfigs", func(t *testing.T) {
		// Legacy AlterConfigs replaces the whole topic config: unspecified keys go
		// back to defaults.
		res, err := c.AlterConfigs(ctxT(t, 10*time.Second), &kafka.AlterConfigsRequest{
			Resources: []kafka.AlterConfigRequestResource{{
				ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
				Configs: []kafka.AlterConfigRequestConfig{
					{Name: "retention.ms", Value: "-1"},
					{Name: "cleanup.policy", Value: "compact"},
				},
			}},
		})
		if err != nil {
			t.Fatalf("AlterConfigs: %v", err)
		}
		for r, err := range res.Errors {
			if err != nil {
				t.Fatalf("AlterConfigs %v: %v", r, err)
			}
		}
		got := waitConfig(t, describe, "cleanup.policy", "compact")
		if got["retention.ms"] != "-1" {
			t.Fatalf("after AlterConfigs: %v", got)
		}
	})

	t.Run("Client.IncrementalAlterConfigs", func(t *testing.T) {
		res, err := c.IncrementalAlterConfigs(ctxT(t, 10*time.Second), &kafka.IncrementalAlterConfigsRequest{
			Resources: []kafka.IncrementalAlterConfigsRequestResource{{
				ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
				Configs: []kafka.IncrementalAlterConfigsRequestConfig{
					{Name: "cleanup.policy", Value: "delete", ConfigOperation: kafka.ConfigOperationSet},
				},
			}},
		})
		if err != nil {
			t.Fatalf("IncrementalAlterConfigs: %v", err)
		}
		for _, r := range res.Resources {
			if r.Error != nil {
				t.Fatalf("IncrementalAlterConfigs %s: %v", r.ResourceName, r.Error)
			}
		}
		got := waitConfig(t, describe, "cleanup.policy", "delete")
		if got["retention.ms"] != "-1" { // untouched by an incremental change
			t.Fatalf("after IncrementalAlterConfigs: %v", got)
		}
	})

	t.Run("Client.CreatePartitions", func(t *testing.T) {
		res, err := c.CreatePartitions(ctxT(t, 10*time.Second), &kafka.CreatePartitionsRequest{
			Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 4}},
		})
		if err != nil {
			t.Fatalf("CreatePartitions: %v", err)
		}
		if err := res.Errors[topic]; err != nil {
			t.Fatalf("CreatePartitions: %v", err)
		}
		if err := kafkatest.WaitTopic(ctxT(t, 20*time.Second), brokers, topic, 4); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Client.DeleteTopics", func(t *testing.T) {
		other := p + "todelete"
		kafkatest.CreateTopic(t, brokers, other, 1)
		res, err := c.DeleteTopics(ctxT(t, 10*time.Second), &kafka.DeleteTopicsRequest{Topics: []string{other}})
		if err != nil {
			t.Fatalf("DeleteTopics: %v", err)
		}
		if err := res.Errors[other]; err != nil {
			t.Fatalf("DeleteTopics: %v", err)
		}
	})
}

func waitConfig(t *testing.T, describe func(*testing.T, ...string) map[string]string, key, want string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := describe(t)
		if got[key] == want || time.Now().After(deadline) {
			if got[key] != want {
				t.Fatalf("config %s: want %q, got %q", key, want, got[key])
			}
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestConnAPIs(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.UniquePrefix(t) + "conn"

	conn, err := kafka.Dial("tcp", brokers[0])
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()

	t.Run("Conn.CreateTopics", func(t *testing.T) {
		if err := conn.CreateTopics(kafka.TopicConfig{
			Topic: topic, NumPartitions: 2, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "-1"}},
		}); err != nil {
			t.Fatalf("Conn.CreateTopics: %v", err)
		}
		if err := kafkatest.WaitTopic(ctxT(t, 20*time.Second), brokers, topic, 2); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Conn.Brokers_Controller_ReadPartitions_ApiVersions", func(t *testing.T) {
		if bs, err := conn.Brokers(); err != nil || len(bs) == 0 {
			t.Fatalf("Brokers: %v %v", bs, err)
		}
		if _, err := conn.Controller(); err != nil {
			t.Fatalf("Controller: %v", err)
		}
		if ps, err := conn.ReadPartitions(topic); err != nil || len(ps) != 2 {
			t.Fatalf("ReadPartitions: %v %v", ps, err)
		}
		if _, err := conn.ApiVersions(); err != nil {
			t.Fatalf("ApiVersions: %v", err)
		}
	})
	t.Run("DialLeader_Write_ReadOffsets_ReadBatch", func(t *testing.T) {
		lc, err := kafka.DialLeader(ctxT(t, 10*time.Second), "tcp", brokers[0], topic, 0)
		if err != nil {
			t.Fatalf("DialLeader: %v", err)
		}
		defer lc.Close()
		_ = lc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := lc.WriteMessages(msgs(5, "conn")...); err != nil {
			t.Fatalf("Conn.WriteMessages: %v", err)
		}
		first, last, err := lc.ReadOffsets()
		if err != nil || first != 0 || last != 5 {
			t.Fatalf("ReadOffsets: %d %d %v", first, last, err)
		}
		if _, err := lc.Seek(0, kafka.SeekAbsolute); err != nil {
			t.Fatalf("Seek: %v", err)
		}
		b := lc.ReadBatch(1, 1<<20)
		n := 0
		for {
			if _, err := b.ReadMessage(); err != nil {
				break
			}
			n++
		}
		if err := b.Close(); err != nil || n != 5 {
			t.Fatalf("ReadBatch: %d msgs, %v", n, err)
		}
	})
	t.Run("Conn.DeleteTopics", func(t *testing.T) {
		if err := conn.DeleteTopics(topic); err != nil {
			t.Fatalf("Conn.DeleteTopics: %v", err)
		}
	})
}

func TestWriterReader(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	p := kafkatest.UniquePrefix(t)
	topic := p + "wr"
	kafkatest.CreateTopic(t, brokers, topic, 3)
	transport := &kafka.Transport{ // explicit Transport, SASL and TLS off
		DialTimeout: 5 * time.Second,
		IdleTimeout: 30 * time.Second,
		MetadataTTL: 5 * time.Second,
		ClientID:    "rtm2kafka-test",
	}
	t.Cleanup(transport.CloseIdleConnections)
	const n = 200

	t.Run("Writer_sync_RequireAll", func(t *testing.T) {
		w := &kafka.Writer{
			Addr: kafka.TCP(brokers...), Topic: topic, Transport: transport,
			RequiredAcks: kafka.RequireAll, Balancer: &kafka.Hash{},
			BatchTimeout: 5 * time.Millisecond, WriteTimeout: 10 * time.Second,
		}
		defer w.Close()
		if err := w.WriteMessages(ctxT(t, 30*time.Second), msgs(n, "sync")...); err != nil {
			t.Fatalf("WriteMessages: %v", err)
		}
	})

	t.Run("Writer_async_Completion", func(t *testing.T) {
		var mu sync.Mutex
		var done int
		var errs []error
		w := &kafka.Writer{
			Addr: kafka.TCP(brokers...), Topic: topic, Transport: transport,
			RequiredAcks: kafka.RequireAll, Balancer: &kafka.Hash{}, Async: true,
			BatchTimeout: 5 * time.Millisecond,
			Completion: func(ms []kafka.Message, err error) {
				mu.Lock()
				defer mu.Unlock()
				done += len(ms)
				if err != nil {
					errs = append(errs, err)
				}
			},
		}
		if err := w.WriteMessages(context.Background(), msgs(n, "async")...); err != nil {
			t.Fatalf("async WriteMessages: %v", err)
		}
		if err := w.Close(); err != nil { // flushes
			t.Fatalf("Close: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if done != n || len(errs) != 0 {
			t.Fatalf("Completion: %d of %d messages, errors %v", done, n, errs)
		}
	})

	for _, codec := range []compress.Compression{compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd} {
		t.Run("Writer_compression_"+codec.String(), func(t *testing.T) {
			w := &kafka.Writer{
				Addr: kafka.TCP(brokers...), Topic: topic, Transport: transport,
				RequiredAcks: kafka.RequireAll, Compression: codec, BatchTimeout: 5 * time.Millisecond,
			}
			defer w.Close()
			if err := w.WriteMessages(ctxT(t, 20*time.Second), msgs(10, "c-"+codec.String())...); err != nil {
				t.Fatalf("WriteMessages %s: %v", codec, err)
			}
		})
	}
	total := 2*n + 4*10

	t.Run("Client.ListOffsets", func(t *testing.T) {
		req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {}}}
		for i := 0; i < 3; i++ {
			req.Topics[topic] = append(req.Topics[topic], kafka.FirstOffsetOf(i), kafka.LastOffsetOf(i))
		}
		res, err := client(brokers).ListOffsets(ctxT(t, 10*time.Second), req)
		if err != nil {
			t.Fatalf("ListOffsets: %v", err)
		}
		sum := int64(0)
		for _, po := range res.Topics[topic] {
			if po.Error != nil {
				t.Fatalf("ListOffsets partition %d: %v", po.Partition, po.Error)
			}
			sum += po.LastOffset - po.FirstOffset
		}
		if sum != int64(total) {
			t.Fatalf("ListOffsets: %d messages in topic, want %d (%+v)", sum, total, res.Topics[topic])
		}
	})

	t.Run("Reader_partition_FirstOffset", func(t *testing.T) {
		got := kafkatest.ReadAll(t, brokers, topic, total, 30*time.Second)
		if len(got) != total {
			t.Fatalf("ReadAll: %d of %d", len(got), total)
		}
		for _, m := range got {
			if len(m.Headers) != 1 || m.Headers[0].Key != "seq" || len(m.Key) == 0 {
				t.Fatalf("message lost key/headers: %+v", m)
			}
		}
	})

	group := p + "group"
	t.Run("Reader_GroupID_commit", func(t *testing.T) {
		seen := readGroup(t, brokers, topic, group, total, 60*time.Second)
		if len(seen) != total {
			t.Fatalf("group reader: %d distinct of %d", len(seen), total)
		}
	})

	t.Run("Client.OffsetFetch_DescribeGroups_ListGroups", func(t *testing.T) {
		c := client(brokers)
		of, err := c.OffsetFetch(ctxT(t, 10*time.Second), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1, 2}}})
		if err != nil || of.Error != nil {
			t.Fatalf("OffsetFetch: %v %v", err, of.Error)
		}
		sum := int64(0)
		for _, p := range of.Topics[topic] {
			if p.Error != nil {
				t.Fatalf("OffsetFetch partition %d: %v", p.Partition, p.Error)
			}
			sum += p.CommittedOffset
		}
		if sum != int64(total) {
			t.Fatalf("committed offsets sum %d, want %d: %+v", sum, total, of.Topics[topic])
		}
		dg, err := c.DescribeGroups(ctxT(t, 10*time.Second), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		if err != nil || len(dg.Groups) != 1 || dg.Groups[0].Error != nil {
			t.Fatalf("DescribeGroups: %v %+v", err, dg)
		}
		lg, err := c.ListGroups(ctxT(t, 10*time.Second), &kafka.ListGroupsRequest{})
		if err != nil || lg.Error != nil {
			t.Fatalf("ListGroups: %v %+v", err, lg)
		}
	})

	t.Run("Reader_GroupID_resumes_after_commit", func(t *testing.T) {
		w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Transport: transport, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
		if err := w.WriteMessages(ctxT(t, 10*time.Second), kafka.Message{Value: []byte("after-commit")}); err != nil {
			t.Fatalf("write: %v", err)
		}
		_ = w.Close()
		seen := readGroup(t, brokers, topic, group, 1, 30*time.Second)
		if _, ok := seen["after-commit"]; !ok || len(seen) != 1 {
			t.Fatalf("resumed group read %d messages: %v", len(seen), keys(seen))
		}
	})
}

// readGroup consumes with a consumer group and explicit commits until n messages.
func readGroup(t *testing.T, brokers []string, topic, group string, n int, timeout time.Duration) map[string]bool {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, GroupID: group, Topic: topic,
		MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 200 * time.Millisecond,
		StartOffset: kafka.FirstOffset, HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second,
		// default 5s: the first join on a fresh broker waits for __consumer_offsets to be created
		JoinGroupBackoff: 250 * time.Millisecond,
	})
	defer func() {
		if err := r.Close(); err != nil { // LeaveGroup
			t.Errorf("Reader.Close: %v", err)
		}
	}()
	ctx := ctxT(t, timeout)
	seen := map[string]bool{}
	for len(seen) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("FetchMessage after %d: %v", len(seen), err)
		}
		seen[string(m.Value)] = true
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("CommitMessages: %v", err)
		}
	}
	return seen
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestWriterMissingTopic: auto.create.topics.enable=false on the test broker, so
// writing to a missing topic must fail (and not hang) — rtm2kafka must create topics.
func TestWriterMissingTopic(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.UniquePrefix(t) + "missing"
	w := &kafka.Writer{
		Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
		AllowAutoTopicCreation: true, MaxAttempts: 2, WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: 100 * time.Millisecond, BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	start := time.Now()
	err := w.WriteMessages(ctxT(t, 30*time.Second), kafka.Message{Value: []byte("x")})
	t.Logf("write to missing topic after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Fatalf("want UnknownTopicOrPartition, got %v", err)
	}
}

// TestWriterAfterCreateTopics pins down a kafka-go Transport behaviour (not a Kafka 4
// issue): Metadata is served from the Transport's cache (refreshed every MetadataTTL,
// default 6s). Only Client.CreateTopics through the SAME Transport refreshes it, so a
// Writer can use the topic at once; a topic made any other way (Conn.CreateTopics,
// another process) gives UnknownTopicOrPartition, without retry, until the refresh.
func TestWriterAfterCreateTopics(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	p := kafkatest.UniquePrefix(t)
	warm := p + "warm"
	kafkatest.CreateTopic(t, brokers, warm, 1)
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Transport: tr, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	write := func(topic string) error {
		return w.WriteMessages(ctxT(t, 20*time.Second), kafka.Message{Topic: topic, Value: []byte("x")})
	}
	if err := write(warm); err != nil { // fills the Transport's metadata cache
		t.Fatalf("write %s: %v", warm, err)
	}
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: 15 * time.Second}

	viaClient := p + "client"
	res, err := c.CreateTopics(ctxT(t, 20*time.Second), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: viaClient, NumPartitions: 2, ReplicationFactor: 1}}})
	if err != nil || res.Errors[viaClient] != nil {
		t.Fatalf("Client.CreateTopics: %v %v", err, res.Errors)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{viaClient}})
	})
	if err := write(viaClient); err != nil {
		t.Fatalf("write right after Client.CreateTopics on the same Transport: %v", err)
	}

	viaConn := p + "conn"
	conn, err := kafka.Dial("tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.CreateTopics(kafka.TopicConfig{Topic: viaConn, NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatalf("Conn.CreateTopics: %v", err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{viaConn}})
	})
	err = write(viaConn)
	t.Logf("write right after Conn.CreateTopics with a warm Transport: %v (UnknownTopicOrPartition expected until MetadataTTL)", err)
	if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Fatalf("unexpected error: %v", err)
	}
}
