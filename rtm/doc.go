// Package rtm speaks the LiveData RTM gateway's server-side protocol: FPNN
// frames with msgpack payloads, signed RTM quests, listen control, the pushes
// the gateway sends, optional ECDH + AES-CFB encryption, one connection
// ([Conn]) and a reconnecting session ([Session]) that replays its listen
// state after every reconnect.
//
// The package knows nothing about Kafka. A [PushHandler] receives every push
// in arrival order and answers it through a [Reply] when, and only when, it
// is safe to do so; until then the push stays unanswered and the gateway
// waits, which is how backpressure reaches it.
//
// The wire format is described in shared/protocol/FPNN-RTM.md; golden frames
// from the official implementations are in shared/protocol/vectors/.
package rtm
