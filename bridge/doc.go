// Package bridge produces the gateway's pushes into Kafka and answers each
// push only after Kafka acknowledged its record: "answered ⇒ in Kafka".
//
// A [Bridge] is an [rtm.PushHandler]. [Bridge.HandlePush] routes a push with
// a [topics.Router], encodes its record into one bridge-owned allocation,
// takes room in the in-flight window (records and bytes) — the only step
// that blocks, so a full window is backpressure on the gateway — and hands
// the record to kafka-go's asynchronous Writer with the push's [rtm.Reply]
// riding along. The writer's completion callback answers the push once the
// record is acked; a failure is settled in one place (settle.go), which also
// records what kafka-go guarantees about ordering and retries. A push that
// could not be decoded, or has no topic, becomes a dead letter on
// <prefix>.deadletter and is answered with an error once that record is
// acked.
//
// The control topic (<prefix>.control, one partition, unlimited retention)
// carries listen commands as JSON ([ParseCommand]). At start
// [Bridge.RestoreListen] replays it into a listen state; [Bridge.RunControl]
// then applies new commands through a [ListenController] and writes a
// [Result] per command to <prefix>.control.results. [SendControl] is the
// synchronous client side used by the ctl subcommand.
//
// [Bridge.EnsureTopics] creates missing topics, [Bridge.CheckWritable] backs
// /readyz, [Metrics] exports Prometheus counters on a caller-owned registry,
// and [Bridge.Shutdown] drains the window before closing the writer while
// [Bridge.Close] stops at once.
package bridge
