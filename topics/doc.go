// Package topics decides where a push goes in Kafka: its topic, its record
// key and its record headers. It is pure: a [rtm.Push] goes in, strings and
// bytes come out. It does no I/O, starts no goroutines, reads no environment
// and does not import a Kafka client.
//
// The zero [Router] is ready to use and routes every message to
// rtm.<scope>.<kind> (scope p2p, group or room; kind chat, audio, cmd, file or
// message), every event to rtm.events, and keys records by the push's target
// id. A Router with a prefix, a key strategy or topic overrides must be
// prepared once with [Router.Init], which validates every topic name against
// Kafka's rules and precomputes them, so that routing a push allocates
// nothing.
//
// The record layout (topics, keys, headers, values) is documented for
// consumers in docs/records.md.
package topics
