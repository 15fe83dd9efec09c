package rtm

import (
	"errors"
	"fmt"
)

// ErrConnClosed is returned by calls and replies on a connection that has
// closed; FPNN code 20002.
var ErrConnClosed = errors.New("rtm: connection closed")

// ErrTimeout is returned when a quest's answer did not arrive in time; FPNN
// code 20003.
var ErrTimeout = errors.New("rtm: quest timed out")

// FPNN and RTM error codes the client acts on (spec §4).
const (
	CodeConnClosed    = 20002
	CodeTimeout       = 20003
	CodeUnknownMethod = 20004
	CodeDecoding      = 20006
	CodeInvalidConn   = 20012

	CodeInvalidPidUid = 200001
	CodeInvalidSign   = 200002
	CodeSameSign      = 200006
	CodeInvalidTime   = 200008
	CodeFrequency     = 200010
)

// Error is an error answer from the peer: an FPNN code (2xxxx) or an RTM code
// (2xxxxx) with the peer's explanation.
type Error struct {
	Method string // the quest that failed
	Code   int
	Ex     string
}

func (e *Error) Error() string {
	kind := "fpnn"
	if e.Code >= 100000 {
		kind = "rtm"
	}
	if e.Method == "" {
		return fmt.Sprintf("rtm: %s error %d (%s)", kind, e.Code, e.Ex)
	}
	return fmt.Sprintf("rtm: %s: %s error %d (%s)", e.Method, kind, e.Code, e.Ex)
}

// Retryable reports whether repeating the quest later may succeed: timeouts,
// closed connections, a full work queue, a stopping server, frequency limits
// and the RTM unknown error. Configuration errors (bad pid or sign, clock
// skew, permissions) are not retryable.
func (e *Error) Retryable() bool {
	switch e.Code {
	case CodeConnClosed, CodeTimeout, 20011, CodeInvalidConn, 20014, CodeFrequency, 200999:
		return true
	}
	return false
}
