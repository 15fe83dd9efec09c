package rtm

// Ping is FPNN's keepalive quest *ping: two-way, an empty map, unsigned
// (spec §5). The answer's payload (C++ servers send {ts}) is not required.
type Ping struct{}

func (*Ping) clientQuest() {}

// Method returns "*ping".
func (*Ping) Method() string { return "*ping" }

// AppendPayload appends the empty map; the signature is ignored.
func (*Ping) AppendPayload(dst []byte, _ Signature) []byte { return append(dst, 0x80) }

// Decode checks that payload is a map; its keys are ignored.
func (*Ping) Decode(payload []byte) error {
	return decodeMap("*ping", payload, func(r *msgReader, _ []byte) error { return r.skip() })
}
