package rtm

import (
	"bytes"
	"math"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// FuzzReadFrame feeds arbitrary bytes to a FrameReader: it must return
// frames or errors, never panic, and every frame it returns re-encodes to
// the bytes it was read from.
func FuzzReadFrame(f *testing.F) {
	for _, b := range allFrameHex(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := NewFrameReader(bytes.NewReader(b), 1<<16)
		for range 64 {
			fm, err := fr.Next()
			if err != nil {
				return
			}
			// Re-encoding gives the same bytes, except that we write version
			// 1 and only the format bit of the flag.
			got, raw := AppendFrame(nil, fm), fr.Raw()
			if len(got) != len(raw) || !bytes.Equal(got[6:], raw[6:]) || got[5] != raw[5]&(FlagMsgpack|FlagJSON) {
				t.Fatalf("re-encoded %x, read %x", got, raw)
			}
			if IsPushMethod(fm.Method) {
				_ = DecodePush(fm, fr.Raw(), new(Push))
			}
			if fm.IsError() {
				_ = DecodeError(fm)
			}
		}
	})
}

// FuzzDecodePush decodes arbitrary payloads under every push method: it must
// not panic, and a push that decodes must survive AppendPush + DecodePush
// with equal fields.
func FuzzDecodePush(f *testing.F) {
	for _, raw := range pushFrames(f) {
		fm, err := DecodeFrame(raw, 0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(scopeOfMethod(fm.Method)), false, fm.Payload)
	}
	f.Add(uint8(ScopeP2P), true, []byte(`{"from":1,"to":2,"mtype":30,"mid":3,"msg":"x","attrs":"","mtime":4}`))
	f.Fuzz(func(t *testing.T, scope uint8, asJSON bool, payload []byte) {
		method := pushMethod(Scope(scope % 5))
		if method == "" {
			method = "pushmsg"
		}
		fm := &Frame{Flag: FlagMsgpack, Type: TwoWay, Seq: 1, Method: []byte(method), Payload: payload}
		if asJSON {
			fm.Flag = FlagJSON
		}
		var p Push
		if err := DecodePush(fm, nil, &p); err != nil {
			if p.Err != err {
				t.Fatalf("p.Err %v, returned %v", p.Err, err)
			}
			return
		}
		if !asJSON {
			checkIntsAgainstV5(t, payload, &p)
		}
		raw := AppendPush(nil, 9, &p)
		g, err := DecodeFrame(raw, len(raw))
		if err != nil {
			t.Fatal(err)
		}
		var q Push
		if err := DecodePush(g, raw, &q); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !pushFieldsEqual(&p, &q) || p.Kind != q.Kind || (p.File == nil) != (q.File == nil) || (p.Audio == nil) != (q.Audio == nil) {
			t.Fatalf("round trip:\n%+v\n%+v", p, q)
		}
	})
}

// checkIntsAgainstV5 is a differential check: vmihailenco/msgpack/v5 must
// read the same integers from the payload as our scanner did.
func checkIntsAgainstV5(t *testing.T, payload []byte, p *Push) {
	t.Helper()
	var m map[string]any
	if err := msgpack.Unmarshal(payload, &m); err != nil {
		// v5 is stricter in places (e.g. duplicate-free maps are not
		// required, but ext types need registration); nothing to compare.
		return
	}
	var want map[string]int64
	if p.Scope == ScopeEvent {
		want = map[string]int64{"pid": p.PID, "uid": p.UID, "time": p.Time}
	} else {
		want = map[string]int64{"from": p.From, targetKey(p.Scope): p.To, "mtype": p.MType, "mid": p.MID, "mtime": p.MTime}
	}
	for k, got := range want {
		v, ok := m[k]
		if !ok {
			t.Fatalf("v5 has no key %q", k)
		}
		var n int64
		switch v := v.(type) {
		case int8:
			n = int64(v)
		case int16:
			n = int64(v)
		case int32:
			n = int64(v)
		case int64:
			n = v
		case uint8:
			n = int64(v)
		case uint16:
			n = int64(v)
		case uint32:
			n = int64(v)
		case uint64:
			n = int64(v)
		case float32:
			n = int64(v)
		case float64:
			if v != math.Trunc(v) {
				t.Fatalf("%s: v5 float %v, we read %d", k, v, got)
			}
			n = int64(v)
		default:
			// Duplicate keys: v5 keeps the last one like we do, so a type
			// mismatch is a real disagreement.
			t.Fatalf("%s: v5 read %T, we read %d", k, v, got)
		}
		if n != got {
			t.Fatalf("%s: v5 %d, ours %d", k, n, got)
		}
	}
}

// TestPushDifferentialV5 runs the differential check on every vector push.
func TestPushDifferentialV5(t *testing.T) {
	n := 0
	for _, raw := range pushFrames(t) {
		f, _ := DecodeFrame(raw, 0)
		var p Push
		if err := DecodePush(f, raw, &p); err != nil {
			t.Fatal(err)
		}
		checkIntsAgainstV5(t, f.Payload, &p)
		var m map[string]any
		if err := msgpack.Unmarshal(f.Payload, &m); err != nil {
			t.Fatalf("v5 cannot read a vector push: %v", err)
		}
		n++
	}
	t.Logf("%d pushes agree with vmihailenco/msgpack/v5", n)
}
