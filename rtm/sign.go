package rtm

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

const redacted = "[redacted]"

// Secret is an RTM project secret key. It prints as "[redacted]" with every
// fmt verb, in slog, and when marshalled as JSON or text (encoding/json,
// any encoder that honours encoding.TextMarshaler), so it cannot leak into
// logs, errors, /status or a dumped config by accident; convert it with
// string(s) only where the key itself is needed.
type Secret string

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]".
func (Secret) GoString() string { return redacted }

// LogValue makes slog print "[redacted]".
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes "[redacted]" as a JSON string, so a struct holding a
// Secret can be shown as JSON without the key.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[redacted]" (used by encoding/xml and other text
// encoders; encoding/json writes a map key of string kind as it is, so
// never key a map by a Secret).
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Format prints "[redacted]" for every verb (quoted for %q).
func (Secret) Format(f fmt.State, verb rune) { writeRedacted(f, verb) }

func writeRedacted(w io.Writer, verb rune) {
	if verb == 'q' {
		_, _ = io.WriteString(w, strconv.Quote(redacted))
		return
	}
	_, _ = io.WriteString(w, redacted)
}

// Signature is the four signing keys every RTM quest carries (spec §6).
type Signature struct {
	PID  int64
	Salt int64
	TS   int64  // Unix seconds
	Sign string // uppercase hex MD5 of "<pid>:<secret>:<salt>:<method>:<ts>"
}

// The signing keys are interleaved with a quest's own keys in sorted order,
// so quests append them one by one with these.

func (s Signature) appendPID(dst []byte) []byte {
	return mpack.AppendIntGo(mpack.AppendStr(dst, "pid"), s.PID)
}

func (s Signature) appendSalt(dst []byte) []byte {
	return mpack.AppendIntGo(mpack.AppendStr(dst, "salt"), s.Salt)
}

func (s Signature) appendSign(dst []byte) []byte {
	return mpack.AppendStr(mpack.AppendStr(dst, "sign"), s.Sign)
}

func (s Signature) appendTS(dst []byte) []byte {
	return mpack.AppendIntGo(mpack.AppendStr(dst, "ts"), s.TS)
}

// ResignDelay is how far ahead of now the official SDK sets ts when it
// re-signs a quest rejected with code 200006 (same sign).
const ResignDelay = 5 * time.Second

// Signer signs RTM quests for one project. It is safe for concurrent use;
// its salts never repeat for the life of the Signer (a millisecond
// timestamp shifted left by 20 bits plus a random per-Signer offset, bumped
// past the last salt issued). The random offset keeps two Signers of the same
// project (two processes, or a bridge and an SDK tool) from issuing the same
// salt in the same millisecond, like the random bits of the official SDKs.
type Signer struct {
	pid    int64
	secret Secret
	offset int64        // random, 0..2^19-1, fixed for the Signer
	last   atomic.Int64 // last salt issued
}

// NewSigner returns a Signer for project pid with its secret key.
func NewSigner(pid int64, secret Secret) *Signer {
	return &Signer{pid: pid, secret: secret, offset: mrand.Int64N(1 << 19)}
}

// PID is the project id the Signer signs for.
func (s *Signer) PID() int64 { return s.pid }

// String describes the Signer without its secret.
func (s *Signer) String() string {
	return fmt.Sprintf("rtm.Signer{pid: %d, secret: %s}", s.pid, redacted)
}

// Format prints the Signer like String for every verb, so that %+v and %#v
// cannot reach the secret.
func (s *Signer) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue makes slog print the pid only.
func (s *Signer) LogValue() slog.Value { return slog.Int64Value(s.pid) }

// Sign signs a quest with a fresh salt and ts = now in Unix seconds.
func (s *Signer) Sign(method string, now time.Time) Signature {
	return s.SignAt(method, s.nextSalt(now), now.Unix())
}

// Resign signs a quest again after the gateway answered 200006 (same sign):
// a fresh salt and ts = now + [ResignDelay], like the official SDK.
func (s *Signer) Resign(method string, now time.Time) Signature {
	return s.SignAt(method, s.nextSalt(now), now.Add(ResignDelay).Unix())
}

// SignAt signs with the given salt and ts; for tests and simulators.
func (s *Signer) SignAt(method string, salt, ts int64) Signature {
	return Signature{PID: s.pid, Salt: salt, TS: ts, Sign: computeSign(s.pid, s.secret, salt, method, ts)}
}

// Verify reports whether sig is a valid signature of method by this
// project's secret; for simulators.
func (s *Signer) Verify(method string, sig Signature) bool {
	return sig.PID == s.pid && sig.Sign == computeSign(s.pid, s.secret, sig.Salt, method, sig.TS)
}

func (s *Signer) nextSalt(now time.Time) int64 {
	cand := now.UnixMilli()<<20 | s.offset
	for {
		last := s.last.Load()
		next := max(cand, last+1)
		if s.last.CompareAndSwap(last, next) {
			return next
		}
	}
}

func computeSign(pid int64, secret Secret, salt int64, method string, ts int64) string {
	buf := make([]byte, 0, 96+len(secret)+len(method))
	buf = strconv.AppendInt(buf, pid, 10)
	buf = append(buf, ':')
	buf = append(buf, secret...)
	buf = append(buf, ':')
	buf = strconv.AppendInt(buf, salt, 10)
	buf = append(buf, ':')
	buf = append(buf, method...)
	buf = append(buf, ':')
	buf = strconv.AppendInt(buf, ts, 10)
	sum := md5.Sum(buf)
	var out [32]byte
	hex.Encode(out[:], sum[:])
	for i, c := range out {
		if c >= 'a' {
			out[i] = c - 'a' + 'A'
		}
	}
	return string(out[:])
}

// DecodeSignature reads pid, salt, ts and sign from a signed quest's
// payload; for simulators. All four keys are required.
func DecodeSignature(payload []byte) (Signature, error) {
	var sig Signature
	var seen uint
	err := decodeMap("signature", payload, func(r *msgReader, key []byte) (err error) {
		switch string(key) {
		case "pid":
			sig.PID, err = r.int()
			seen |= 1
		case "salt":
			sig.Salt, err = r.int()
			seen |= 2
		case "ts":
			sig.TS, err = r.int()
			seen |= 4
		case "sign":
			var b []byte
			b, _, err = r.bytes()
			sig.Sign = string(b)
			seen |= 8
		default:
			err = r.skip()
		}
		return err
	})
	if err != nil {
		return Signature{}, err
	}
	if seen != 15 {
		return Signature{}, missingKey("signature", []string{"pid", "salt", "ts", "sign"}, seen)
	}
	return sig, nil
}
