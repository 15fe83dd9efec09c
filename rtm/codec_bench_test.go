package rtm

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// benchPush builds a pushmsg chat frame whose body is size bytes.
func benchPush(size int) []byte {
	p := &Push{Scope: ScopeP2P, From: 10001, To: 10002, MType: 30, MID: 7201234567890300001,
		Msg: bytes.Repeat([]byte("a"), size), Attrs: []byte(`{"k":"v"}`), MTime: 1717000000123}
	return AppendPush(nil, 1, p)
}

var benchSizes = []int{100, 1 << 10, 16 << 10}

func BenchmarkReadFrame(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			frame := benchPush(size)
			stream := bytes.Repeat(frame, 64)
			r := bytes.NewReader(stream)
			fr := NewFrameReader(r, 0)
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for i := 0; b.Loop(); i++ {
				if i%64 == 0 {
					r.Reset(stream)
				}
				if _, err := fr.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodePush(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			raw := benchPush(size)
			f, err := DecodeFrame(raw, 0)
			if err != nil {
				b.Fatal(err)
			}
			var p Push
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if err := DecodePush(f, raw, &p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendAnswer(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(17)
	for i := 0; b.Loop(); i++ {
		buf = AppendAnswer(buf[:0], uint32(i), FlagMsgpack)
	}
}

// v5Push is what a straightforward vmihailenco/msgpack/v5 decoder would
// fill; it is the yardstick for DecodePush + AppendAnswer.
type v5Push struct {
	From  int64  `msgpack:"from"`
	To    int64  `msgpack:"to"`
	MType int64  `msgpack:"mtype"`
	MID   int64  `msgpack:"mid"`
	Msg   []byte `msgpack:"msg"`
	Attrs string `msgpack:"attrs"`
	MTime int64  `msgpack:"mtime"`
}

func BenchmarkMsgpackV5DecodeAnswer(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			raw := benchPush(size)
			f, _ := DecodeFrame(raw, 0)
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				var p v5Push
				if err := msgpack.Unmarshal(f.Payload, &p); err != nil {
					b.Fatal(err)
				}
				buf = AppendAnswer(buf[:0], f.Seq, f.Flag)
			}
		})
	}
}

// BenchmarkDecodePushAnswer is our side of the yardstick: decode and answer.
func BenchmarkDecodePushAnswer(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			raw := benchPush(size)
			f, _ := DecodeFrame(raw, 0)
			buf := make([]byte, 0, 64)
			var p Push
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if err := DecodePush(f, raw, &p); err != nil {
					b.Fatal(err)
				}
				buf = AppendAnswer(buf[:0], f.Seq, f.Flag)
			}
		})
	}
}
