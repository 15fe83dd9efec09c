package rtm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// The RTM half on its own: a push source writes pre-encoded pushmsg frames
// over loopback TCP as fast as the socket takes them and reads the answers
// on the same socket; the client under test decodes every push and answers
// it at once. BenchmarkConnPushes measures rtm.Dial's Conn;
// BenchmarkMsgpackV5Loop is the yardstick, a plain single-goroutine
// vmihailenco/msgpack/v5 decode-and-answer loop over the same setup.

// connBenchSizes are the body sizes of the RTM-half benchmarks.
var connBenchSizes = []struct {
	name string
	size int
}{{"100B", 100}, {"1KiB", 1 << 10}, {"16KiB", 16 << 10}}

// connBenchBlock is the number of distinct frames in the source's block.
const connBenchBlock = 256

// connBenchFrames returns a block of connBenchBlock pushmsg chat frames
// (seqs 1..connBenchBlock, distinct mids) whose bodies are size bytes.
func connBenchFrames(size int) []byte {
	var block []byte
	body := bytes.Repeat([]byte("lorem ipsum "), size/12+1)[:size]
	for i := range connBenchBlock {
		p := &Push{Scope: ScopeP2P, From: 500_001 + int64(i%100), To: 1_000_000 + int64(i%100), MType: 30,
			MID: int64(i+1)<<32 | 1, Msg: body, Attrs: []byte(`{"lang":"en"}`), MTime: 1717000000123}
		block = AppendPush(block, uint32(i+1), p)
	}
	return block
}

// pushSource is the gateway side of one benchmark connection.
type pushSource struct {
	nc    net.Conn
	block []byte
	n     int // frames in block
}

// run writes total pushes (repeating the block) and reads total answers;
// it returns when every answer has been read. Seqs repeat across blocks:
// the client answers whatever seq it is given.
func (s *pushSource) run(total int) error {
	errc := make(chan error, 1)
	go func() {
		frame := len(s.block) / s.n // every frame of a block has the same size
		left := total
		for left > 0 {
			k := min(left, s.n)
			if _, err := s.nc.Write(s.block[:k*frame]); err != nil {
				errc <- err
				return
			}
			left -= k
		}
		errc <- nil
	}()
	fr := NewFrameReader(bufio.NewReaderSize(s.nc, 64<<10), 0)
	for i := 0; i < total; i++ {
		f, err := fr.Next()
		if err != nil {
			return err
		}
		if f.Type != Answer || f.Status != 0 {
			return errors.New("rtm bench: unexpected frame from the client")
		}
	}
	return <-errc
}

// benchPair connects a push source and a client over loopback TCP; client
// is started on the client side of the connection.
func benchPair(b *testing.B, size int, client func(nc net.Conn) (stop func())) *pushSource {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := ctAcceptOne(b, ln)
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	sc, ok := <-accepted
	if !ok {
		b.Fatal("accept failed")
	}
	stop := client(cc)
	b.Cleanup(func() {
		sc.Close()
		stop()
	})
	block := connBenchFrames(size)
	return &pushSource{nc: sc, block: block, n: connBenchBlock}
}

// runPushes times b.N pushes through src and reports pushes/s.
func runPushes(b *testing.B, src *pushSource) {
	b.Helper()
	// Warm up the connection (buffers, TCP window) outside the timer.
	if err := src.run(connBenchBlock); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(src.block) / src.n))
	b.ResetTimer()
	start := time.Now()
	if err := src.run(b.N); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "pushes/s")
}

// BenchmarkConnPushes measures a Conn made by Dial, as the bridge's session
// makes it, whose handler decodes every push with DecodePush and answers it
// with r.OK at once.
func BenchmarkConnPushes(b *testing.B) {
	for _, bs := range connBenchSizes {
		b.Run(bs.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			accepted := ctAcceptOne(b, ln)
			var p Push
			h := QuestHandlerFunc(func(_ context.Context, f *Frame, raw []byte, r Reply) {
				if err := DecodePush(f, raw, &p); err != nil {
					_ = r.Error(CodeDecoding, err.Error())
					return
				}
				_ = r.OK()
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			conn, err := Dial(ctx, ln.Addr().String(), h, WithKeepalive(0, 0))
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			sc, ok := <-accepted
			if !ok {
				b.Fatal("accept failed")
			}
			defer func() {
				sc.Close()
				conn.Close()
			}()
			src := &pushSource{nc: sc, block: connBenchFrames(bs.size), n: connBenchBlock}
			runPushes(b, src)
		})
	}
}

// v5LoopPush is what a straightforward vmihailenco/msgpack/v5 client
// decodes a pushmsg payload into.
type v5LoopPush struct {
	From  int64  `msgpack:"from"`
	To    int64  `msgpack:"to"`
	MType int64  `msgpack:"mtype"`
	MID   int64  `msgpack:"mid"`
	Msg   []byte `msgpack:"msg"`
	Attrs string `msgpack:"attrs"`
	MTime int64  `msgpack:"mtime"`
}

// v5Loop is the yardstick client: one goroutine reads a frame header and
// body, decodes the payload with msgpack.Unmarshal, appends the answer to a
// buffered writer and flushes whenever no more input is buffered.
func v5Loop(nc net.Conn) error {
	br := bufio.NewReaderSize(nc, 64<<10)
	bw := bufio.NewWriterSize(nc, 64<<10)
	var hdr [HeaderSize]byte
	body := make([]byte, 0, 64<<10)
	ans := make([]byte, 0, 32)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return err
		}
		h, err := ParseHeader(hdr[:], 0)
		if err != nil {
			return err
		}
		n := h.BodySize()
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			return err
		}
		seq := binary.LittleEndian.Uint32(body[:4])
		var p v5LoopPush
		if err := msgpack.Unmarshal(body[4+int(h.SS):], &p); err != nil {
			return err
		}
		ans = AppendAnswer(ans[:0], seq, h.Flag)
		if _, err := bw.Write(ans); err != nil {
			return err
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

// BenchmarkMsgpackV5Loop is the yardstick for BenchmarkConnPushes: the same
// source against a plain msgpack/v5 decode-and-answer loop.
func BenchmarkMsgpackV5Loop(b *testing.B) {
	for _, bs := range connBenchSizes {
		b.Run(bs.name, func(b *testing.B) {
			src := benchPair(b, bs.size, func(nc net.Conn) func() {
				done := make(chan struct{})
				go func() {
					defer close(done)
					_ = v5Loop(nc)
				}()
				return func() {
					nc.Close()
					<-done
				}
			})
			runPushes(b, src)
		})
	}
}
