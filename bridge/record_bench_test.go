package bridge

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// BenchmarkAppendRecord encodes chat pushes of 100 B, 1 KiB and 16 KiB into
// a reused buffer; it must report 0 allocs/op.
func BenchmarkAppendRecord(b *testing.B) {
	for _, size := range []int{100, 1 << 10, 16 << 10} {
		text := bytes.Repeat([]byte("héllo, wörld \"quoted\"\n"), size/24+1)[:size]
		text = bytes.ToValidUTF8(text, []byte("x"))
		binBody := bytes.Repeat([]byte{0x00, 0xff, 0x80, 0x7f}, size/4)
		for _, c := range []struct {
			name string
			f    Format
			msg  []byte
			bin  bool
		}{
			{"json/text", FormatJSON, text, false},
			{"json/binary", FormatJSON, binBody, true},
			{"msgpack/text", FormatMsgpack, text, false},
			{"msgpack/binary", FormatMsgpack, binBody, true},
		} {
			p := &rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 10001, To: 10002, MType: 30,
				MID: 7201234567890300001, Msg: c.msg, MsgBinary: c.bin, Attrs: []byte(`{"lang":"en"}`), MTime: 1717000000123}
			b.Run(fmt.Sprintf("%s/%dB", c.name, size), func(b *testing.B) {
				dst := make([]byte, 0, 2*size+512)
				b.SetBytes(int64(len(c.msg)))
				b.ReportAllocs()
				for b.Loop() {
					dst = AppendRecord(dst[:0], c.f, p, 11000001, 1717000009999)
				}
			})
		}
	}
}

// BenchmarkAppendRecordFile encodes a file message with parsed file info.
func BenchmarkAppendRecordFile(b *testing.B) {
	p := &rtm.Push{Scope: rtm.ScopeGroup, Kind: rtm.KindFile, From: 10003, To: 3001, MType: 40, MID: 1,
		Msg:   []byte(`{"url":"https://files.example.com/img/abc.jpg","size":204800,"surl":"https://files.example.com/img/abc_thumb.jpg"}`),
		Attrs: []byte(`{"rtm":{"ext":"jpg"},"custom":{"album":"trip"}}`), MTime: 1717000000128,
		File: &rtm.FileInfo{URL: "https://files.example.com/img/abc.jpg", Size: 204800, SURL: "https://files.example.com/img/abc_thumb.jpg",
			RTMAttrs: `{"ext":"jpg"}`, CustomAttrs: `{"album":"trip"}`}}
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendRecord(dst[:0], FormatJSON, p, 11000001, 1717000009999)
	}
}
