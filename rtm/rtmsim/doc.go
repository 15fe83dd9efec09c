// Package rtmsim is a simulated RTM gateway: an FPNN server that speaks the
// gateway's side of the protocol in shared/protocol/FPNN-RTM.md, for tests,
// benchmarks and the `rtm2kafka sim` command.
//
// A [Server] accepts plaintext or encrypted connections (the *key handshake
// in stream and package mode, when [Config.ServerKey] is set), checks the
// signature of every RTM quest, keeps a listen state per connection, pushes
// messages and events to the connections whose state covers them and counts
// the fate of every push: answered in time, answered with an error, overdue
// (answered after [Config.AnswerTimeout]) or unanswered — in total and per
// connection ([Stats.ByConn], [Server.ConnStats], [Config.OnOutcome]). A
// message no live connection covers is not pushed and is counted as
// no_listener ([Stats.NoListener]): the gap of a failover between two
// bridges. Tests inject traffic with [Server.Publish], [Server.PublishEvent]
// or the load generator [Server.Generate]; an official server SDK can also
// send messages with sendmsg / sendgroupmsg / sendroommsg / sendmsgs /
// broadcastmsg. A fixed server key can be loaded from the PEM openssl
// writes ([ParseServerKeyPEM]); a load mix from text ([ParseMix]). Fault switches ([Server.DropAll],
// [Server.Drop], [Server.SetPaused], [Server.SendMalformed],
// [Server.RejectListen], [Server.SetRejectFunc], [Server.SetRefuse],
// [Server.SetAcceptDelay]) exercise a client's recovery paths.
//
// For tests of a client, connections are numbered from 1 in accept order;
// [Config.OnQuest] reports every RTM quest with its connection, form,
// signature and answer code; [Server.AcceptTimes], [Server.ListenOf] and
// [Server.Go] / [Server.GoPush] / [Server.Send] (a gateway ping, a raw or
// invalid push, an unknown method, on one connection) complete the view.
//
// # What is like the real gateway
//
//   - Frames, quest decoding and signing come from package rtm. Pushes are
//     encoded byte for byte like the golden vectors: by default like the
//     official Go encoder (keys sorted, rtm_pushes.json); with
//     [Config.Encoding] = [EncodingCpp] like the C++ FPNN writer a C++
//     gateway uses (insertion order, smallest unsigned integer formats,
//     cpp_frames.json). Which one the production gateway uses is
//     unconfirmed (spec §14.8).
//   - Signatures (spec §6): a wrong pid or sign is answered 200002 ("invalid
//     pid or sign"); a ts more than [Config.ClockSkew] (default 5 min) away
//     from the simulator's clock 200008; a (salt, sign) pair seen before
//     200006 ("same sign"). Checks run in that order.
//   - Listen quests (spec §7): setlisten's set-all form sets the flags it
//     carries; its id-list form overwrites the lists it carries; addlisten
//     and removelisten change lists incrementally; flags and lists combine
//     as a union ([rtm.ListenState]). State belongs to the connection and is
//     forgotten when it closes.
//   - Every push is a two-way quest; *ping is answered {ts}; unknown
//     methods 20004 "Method function is unconfiged.".
//
// # What is assumed (spec §14, unconfirmed) and configurable
//
//   - The answer timeout for pushes: 5 s by default ([Config.AnswerTimeout]).
//     A later answer is recognised for [Config.LateGrace] more and counted
//     as overdue.
//   - What happens to an unanswered push: by default nothing (no
//     redelivery). With [Config.Redeliver] the same message (same mid, same
//     bytes) is pushed again after the timeout, or after its connection
//     died, to the same connection or the first live one that covers it; a
//     push answered with an error is not redelivered.
//   - Several connections listening to the same messages: the simulator
//     fans out, pushing each message to every live connection whose listen
//     state covers it (each push answered and counted on its own). What
//     the real gateway does with two listeners of one project — all of
//     them, one of them, the last to listen — is unconfirmed. The
//     high-availability tests rely on the fan-out only for the overlap of a
//     handover (both bridges listen for a moment; the overlap is written
//     twice) and for a zombie's pushes (a stopped bridge still listening).
//   - sendmsgs {mtype, from, tos, mid, msg, attrs} pushes one pushmsg per
//     uid in tos (same mid); broadcastmsg {mtype, from, mid, msg, attrs}
//     pushes one pushmsg with to 0 to p2p listeners. How the gateway pushes
//     these to a listening server is unconfirmed. Both answer {mtime}.
//   - A flag absent from a set-all setlisten keeps its value (the Python SDK
//     sends only the flags given). A list absent from an id-list setlisten
//     keeps its value unless [Config.AbsentListClears].
//   - The allowed clock skew (5 min) and the replay window (the skew, at
//     least 1 min, past the quest's ts).
//   - The gateway "ping" push interval: off unless [Config.PingInterval].
//
// # What is not simulated
//
// RTM size limits (200030, 200032), frequency limits, console-side listen
// settings, offline storage or history, idle timeouts of silent clients,
// JSON-encoded quests (answered 10002), any RTM method beyond the listen and
// send quests (sendmsg, sendgroupmsg, sendroommsg, sendmsgs, broadcastmsg),
// and multiple projects (one PID per Server).
//
// # Errors the simulator answers for bad quests
//
// A quest whose payload is not a map or has a value of the wrong type gets
// FPNN 10010; one missing a required key (a signing key, or from, mid… in a
// send) 10009. [Server.RejectListen] answers the code it is given.
package rtmsim
