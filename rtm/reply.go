package rtm

// answerer sends the answer to one two-way quest. Conn implements it.
type answerer interface {
	answer(seq uint32, flag byte, code int, ex string) error
}

// seenMarker records a settled push in the duplicate filter.
type seenMarker interface {
	markSeen(k dupKey)
}

// dupKey identifies a message for duplicate filtering (spec §8.4).
type dupKey struct {
	scope Scope
	from  int64
	to    int64
	mid   int64
}

// Reply answers one push. It is a small value: copy it freely, but settle it
// exactly once, with OK or Error, from any goroutine. After the connection
// that carried the push has closed, both return [ErrConnClosed]: the gateway
// will not see the answer.
type Reply struct {
	a    answerer
	seq  uint32
	flag byte
	seen seenMarker // nil unless the push takes part in duplicate filtering
	key  dupKey
}

// NewReply returns a Reply that calls fn instead of answering on a
// connection; fn receives code 0 for OK. It is for tests and tools that drive
// a [PushHandler] without a gateway.
func NewReply(fn func(code int, ex string) error) Reply {
	return Reply{a: answerFunc(fn)}
}

type answerFunc func(code int, ex string) error

func (f answerFunc) answer(_ uint32, _ byte, code int, ex string) error { return f(code, ex) }

// Seq is the sequence number of the quest this Reply answers.
func (r Reply) Seq() uint32 { return r.seq }

// OK answers the push with an empty map: the gateway may consider it
// delivered. Only call it once the push is safe.
func (r Reply) OK() error {
	if r.a == nil {
		return ErrConnClosed
	}
	err := r.a.answer(r.seq, r.flag, 0, "")
	if r.seen != nil {
		r.seen.markSeen(r.key)
	}
	return err
}

// Error answers the push with an FPNN error answer {code, ex}.
func (r Reply) Error(code int, ex string) error {
	if r.a == nil {
		return ErrConnClosed
	}
	return r.a.answer(r.seq, r.flag, code, ex)
}
