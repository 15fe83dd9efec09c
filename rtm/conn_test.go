package rtm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

// ---- helpers ----

// ctWaitFor is the deadline for anything a test waits on.
const ctWaitFor = 10 * time.Second

// ctListen opens a loopback listener closed at the end of the test.
func ctListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// ctAcceptOne accepts one raw connection in the background.
func ctAcceptOne(t testing.TB, ln net.Listener) <-chan net.Conn {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- nc
	}()
	return ch
}

func ctRecvConn(t *testing.T, ch <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case nc, ok := <-ch:
		if !ok {
			t.Fatal("accept failed")
		}
		t.Cleanup(func() { nc.Close() })
		return nc
	case <-time.After(ctWaitFor):
		t.Fatal("no connection accepted")
	}
	return nil
}

// ctPair dials a client Conn to a server Conn accepted over loopback. Both are
// closed at the end of the test.
func ctPair(t *testing.T, cli, srv QuestHandler, cliOpts, srvOpts []ConnOption) (*Conn, *Conn) {
	t.Helper()
	ln := ctListen(t)
	type res struct {
		c   *Conn
		err error
	}
	sch := make(chan res, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			sch <- res{nil, err}
			return
		}
		c, err := Accept(context.Background(), nc, srv, srvOpts...)
		sch <- res{c, err}
	}()
	c, err := Dial(context.Background(), ln.Addr().String(), cli, cliOpts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	var s res
	select {
	case s = <-sch:
	case <-time.After(ctWaitFor):
		t.Fatal("Accept did not return")
	}
	if s.err != nil {
		t.Fatalf("Accept: %v", s.err)
	}
	t.Cleanup(func() { s.c.Close() })
	return c, s.c
}

// ctDialRaw dials a Conn to a raw peer the test drives by hand.
func ctDialRaw(t *testing.T, h QuestHandler, opts ...ConnOption) (*Conn, net.Conn) {
	t.Helper()
	ln := ctListen(t)
	ch := ctAcceptOne(t, ln)
	c, err := Dial(context.Background(), ln.Addr().String(), h, opts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ctRecvConn(t, ch)
}

// ctAcceptRaw runs Accept on the server end of a loopback connection whose
// client end the test drives by hand.
func ctAcceptRaw(t *testing.T, h QuestHandler, opts ...ConnOption) (*Conn, net.Conn) {
	t.Helper()
	ln := ctListen(t)
	ch := ctAcceptOne(t, ln)
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	c, err := Accept(context.Background(), ctRecvConn(t, ch), h, opts...)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, raw
}

func ctWaitDone(t *testing.T, c *Conn) error {
	t.Helper()
	select {
	case <-c.Done():
		return c.Err()
	case <-time.After(ctWaitFor):
		t.Fatal("connection did not die")
	}
	return nil
}

// ctMapInt encodes {key: v}.
func ctMapInt(key string, v int64) []byte {
	return mpack.AppendIntGo(mpack.AppendStr(mpack.AppendMapHeader(nil, 1), key), v)
}

// ctReadInt decodes {key: v}.
func ctReadInt(t testing.TB, payload []byte, key string) int64 {
	var v int64
	found := false
	err := decodeMap("test", payload, func(r *msgReader, k []byte) (err error) {
		if string(k) != key {
			return r.skip()
		}
		found = true
		v, err = r.int()
		return err
	})
	if err != nil || !found {
		t.Errorf("payload %x: key %q: found %v, %v", payload, key, found, err)
	}
	return v
}

func ctQuest(t MsgType, seq uint32, method string, flag byte, payload []byte) []byte {
	return AppendFrame(nil, &Frame{Flag: flag, Type: t, Seq: seq, Method: []byte(method), Payload: payload})
}

// ---- calls ----

func TestConnCallCorrelation(t *testing.T) {
	const n = 1000
	type held struct {
		r Reply
		i int64
	}
	var mu sync.Mutex
	var heldReplies []held
	srv := QuestHandlerFunc(func(_ context.Context, f *Frame, _ []byte, r Reply) {
		mu.Lock()
		defer mu.Unlock()
		heldReplies = append(heldReplies, held{r, ctReadInt(t, f.Payload, "i")})
		if len(heldReplies) < n {
			return
		}
		// Every quest is in: answer them all, in a random order.
		rand.Shuffle(len(heldReplies), func(a, b int) { heldReplies[a], heldReplies[b] = heldReplies[b], heldReplies[a] })
		for _, h := range heldReplies {
			if h.i%7 == 0 {
				if err := h.r.Error(200000+int(h.i), "odd one"); err != nil {
					t.Error(err)
				}
			} else if err := AnswerPayload(h.r, ctMapInt("echo", h.i)); err != nil {
				t.Error(err)
			}
		}
	})
	cli, _ := ctPair(t, nil, srv, nil, nil)

	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ans, err := cli.Call(context.Background(), "echo", ctMapInt("i", int64(i)))
			if i%7 == 0 {
				var e *Error
				if !errors.As(err, &e) || e.Code != 200000+i || e.Method != "echo" || e.Ex != "odd one" {
					t.Errorf("call %d: want *Error code %d, got %v", i, 200000+i, err)
				}
				return
			}
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			if got := ctReadInt(t, ans, "echo"); got != int64(i) {
				t.Errorf("call %d got the answer of %d", i, got)
			}
		})
	}
	wg.Wait()
	cli.cmu.Lock()
	left := len(cli.calls)
	cli.cmu.Unlock()
	if left != 0 {
		t.Errorf("%d calls left in the map", left)
	}
}

func TestConnCallTimeout(t *testing.T) {
	quests := make(chan Reply, 10)
	srv := QuestHandlerFunc(func(_ context.Context, _ *Frame, _ []byte, r Reply) { quests <- r }) // never answered
	cli, _ := ctPair(t, nil, srv, []ConnOption{WithCallTimeout(50 * time.Millisecond)}, nil)

	start := time.Now()
	_, err := cli.Call(context.Background(), "slow", nil)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Call: want ErrTimeout, got %v", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("timed out after %s, before the 50ms call timeout", d)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = cli.Call(ctx, "slow", nil)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call with ctx deadline: want ErrTimeout and DeadlineExceeded, got %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	go func() { <-quests; <-quests; <-quests; cancel() }() // cancel once the third quest arrived
	_, err = cli.Call(ctx, "slow", nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Errorf("cancelled Call: want context.Canceled, got %v", err)
	}

	done := make(chan error, 1)
	cli.Go("slow", nil, 20*time.Millisecond, func(_ []byte, err error) { done <- err })
	select {
	case err := <-done:
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("Go: want ErrTimeout, got %v", err)
		}
	case <-time.After(ctWaitFor):
		t.Fatal("Go callback not called")
	}

	// A late answer for a timed-out quest is dropped and harms nothing.
	cli.cmu.Lock()
	left := len(cli.calls)
	cli.cmu.Unlock()
	if left != 0 {
		t.Errorf("%d timed-out calls left in the map", left)
	}
	r := <-quests
	if err := r.OK(); err != nil {
		t.Fatal(err)
	}
	if cli.Err() != nil {
		t.Fatalf("conn died: %v", cli.Err())
	}
}

func TestConnCloseFailsPendingAndJoins(t *testing.T) {
	base := testkit.StableGoroutines()
	const n = 20
	seen := make(chan Reply, n)
	srv := QuestHandlerFunc(func(_ context.Context, _ *Frame, _ []byte, r Reply) { seen <- r })
	ln := ctListen(t)
	sch := make(chan *Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			t.Error(err)
			sch <- nil
			return
		}
		s, err := Accept(context.Background(), nc, srv)
		if err != nil {
			t.Error(err)
		}
		sch <- s
	}()
	cli, err := Dial(context.Background(), ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := <-sch
	if s == nil {
		t.FailNow()
	}

	errs := make(chan error, 2*n)
	for range n / 2 {
		go func() {
			_, err := cli.Call(context.Background(), "hang", nil)
			errs <- err
		}()
		cli.Go("hang", nil, time.Hour, func(_ []byte, err error) { errs <- err })
	}
	var replies []Reply
	for range n {
		select {
		case r := <-seen:
			replies = append(replies, r)
		case <-time.After(ctWaitFor):
			t.Fatal("server did not see every quest")
		}
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrConnClosed) {
				t.Errorf("pending quest: want ErrConnClosed, got %v", err)
			}
		case <-time.After(ctWaitFor):
			t.Fatal("pending quest not failed by Close")
		}
	}
	if !errors.Is(cli.Err(), ErrConnClosed) {
		t.Errorf("Err after Close: %v", cli.Err())
	}
	if _, err := cli.Call(context.Background(), "late", nil); !errors.Is(err, ErrConnClosed) {
		t.Errorf("Call after Close: %v", err)
	}
	if err := cli.Send("late", nil); !errors.Is(err, ErrConnClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	// The server sees the EOF; its replies then fail.
	if err := ctWaitDone(t, s); !errors.Is(err, io.EOF) {
		t.Errorf("server Err: want EOF, got %v", err)
	}
	if err := replies[0].OK(); !errors.Is(err, ErrConnClosed) {
		t.Errorf("Reply on a dead conn: %v", err)
	}
	s.Close()
	s.Close() // twice is harmless
	testkit.WaitGoroutines(t, base)
}

// ---- quests from the peer ----

func TestConnHandlerOrder(t *testing.T) {
	const n = 10000
	var next atomic.Int64
	all := make(chan struct{})
	srv := QuestHandlerFunc(func(_ context.Context, f *Frame, _ []byte, r Reply) {
		i := ctReadInt(t, f.Payload, "i")
		if want := next.Add(1) - 1; i != want {
			t.Errorf("quest %d arrived in position %d", i, want)
		}
		if f.Type == TwoWay {
			if err := r.OK(); err != nil {
				t.Error(err)
			}
		} else if err := r.OK(); err == nil {
			t.Error("a one-way quest's Reply answered")
		}
		if i == n-1 {
			close(all)
		}
	})
	cli, _ := ctPair(t, nil, srv, nil, nil)
	answered := make(chan error, n)
	for i := range n {
		if i%10 == 0 {
			cli.Go("pushmsg", ctMapInt("i", int64(i)), 0, func(_ []byte, err error) { answered <- err })
		} else if err := cli.Send("pushmsg", ctMapInt("i", int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(ctWaitFor):
		t.Fatalf("handler saw %d of %d quests", next.Load(), n)
	}
	for range n / 10 {
		if err := <-answered; err != nil {
			t.Error(err)
		}
	}
}

func TestConnBackpressure(t *testing.T) {
	release := make(chan struct{})
	var handled atomic.Int64
	h := QuestHandlerFunc(func(ctx context.Context, _ *Frame, _ []byte, _ Reply) {
		if handled.Add(1) == 1 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	})
	// Dead after 25+2×10 = 45 ms of silence: far less than the blocked time.
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	srv, raw := ctAcceptRaw(t, h, WithKeepalive(25*time.Millisecond, 10*time.Millisecond))

	frame := ctQuest(OneWay, 0, "pushmsg", FlagMsgpack, mpack.AppendBin(mpack.AppendStr(mpack.AppendMapHeader(nil, 1), "msg"), make([]byte, 16<<10)))
	sent := 0
	var partial int
	for {
		raw.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := raw.Write(frame)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write: %v", err)
			}
			partial = n
			break
		}
		sent++
		if sent > 100000 { // 1.6 GB: the reader is not blocked
			t.Fatal("writes never blocked")
		}
	}
	t.Logf("peer blocked after %d frames (%d KiB)", sent, sent*len(frame)>>10)

	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	if grew := int64(during.HeapInuse) - int64(before.HeapInuse); grew > 4<<20 {
		t.Errorf("heap grew by %d bytes while the handler blocked", grew)
	}
	if err := srv.Err(); err != nil {
		t.Fatalf("conn died during backpressure: %v", err)
	}
	if got := handled.Load(); got != 1 {
		t.Fatalf("handler ran %d times while blocked", got)
	}

	close(release)
	raw.SetWriteDeadline(time.Time{})
	if _, err := raw.Write(frame[partial:]); err != nil {
		t.Fatal(err)
	}
	want := int64(sent + 1)
	testkit.Eventually(t, ctWaitFor, func() bool { return handled.Load() >= want },
		"%d frames handled after the release", want)
}

func TestConnKeepaliveKillsSilentPeer(t *testing.T) {
	start := time.Now()
	c, raw := ctDialRaw(t, nil, WithKeepalive(30*time.Millisecond, 15*time.Millisecond))
	fr := NewFrameReader(raw, 0)
	raw.SetReadDeadline(time.Now().Add(ctWaitFor))
	f, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != TwoWay || string(f.Method) != "*ping" || !bytes.Equal(f.Payload, []byte{0x80}) {
		t.Fatalf("want a *ping quest, got %v %q %x", f.Type, f.Method, f.Payload)
	}
	err = ctWaitDone(t, c)
	if !errors.Is(err, ErrStale) {
		t.Fatalf("want ErrStale, got %v", err)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("declared dead after %s, before interval+2×timeout = 60ms", d)
	}
	t.Log(err)
}

func TestConnKeepaliveAnsweredStaysAlive(t *testing.T) {
	// Interval 100 ms, dead after 300 ms of silence. The answering side is
	// this test's goroutine; with 25 ms of slack (the old 50/25 ms) a loaded
	// 2-core machine under -race sometimes ran it too late and the link was
	// declared stale (seen: "nothing received for 126ms (limit 100ms)").
	// 200 ms of slack keeps the test about the keepalive, not the scheduler.
	c, raw := ctDialRaw(t, nil, WithKeepalive(100*time.Millisecond, 100*time.Millisecond))
	fr := NewFrameReader(raw, 0)
	raw.SetReadDeadline(time.Now().Add(ctWaitFor))
	// Answer six pings, one by one: that spans at least six intervals,
	// twice the 300 ms after which an unanswered conn dies.
	for i := range 6 {
		f, err := fr.Next()
		if err != nil {
			t.Fatalf("ping %d: %v (conn err %v)", i, err, c.Err())
		}
		if string(f.Method) != "*ping" {
			t.Fatalf("got %q", f.Method)
		}
		if _, err := raw.Write(AppendAnswer(nil, f.Seq, FlagMsgpack)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Err(); err != nil {
		t.Fatalf("conn died although pings were answered: %v", err)
	}
	c.cmu.Lock()
	left := len(c.calls)
	c.cmu.Unlock()
	if left > 1 {
		t.Errorf("%d pings outstanding", left)
	}
}

func TestConnAnswersPing(t *testing.T) {
	c, raw := ctDialRaw(t, nil)
	raw.SetReadDeadline(time.Now().Add(ctWaitFor))
	fr := NewFrameReader(raw, 0)
	raw.Write(ctQuest(TwoWay, 0x10, "*ping", FlagMsgpack, []byte{0x80}))
	f, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if want := AppendAnswer(nil, 0x10, FlagMsgpack); f.Type != Answer || !bytes.Equal(fr.Raw(), want) {
		t.Errorf("client *ping answer %x, want %x", fr.Raw(), want)
	}

	s, sraw := ctAcceptRaw(t, nil)
	sraw.SetReadDeadline(time.Now().Add(ctWaitFor))
	sfr := NewFrameReader(sraw, 0)
	before := time.Now().UnixMilli()
	sraw.Write(ctQuest(TwoWay, 0x11, "*ping", FlagMsgpack, []byte{0x80}))
	f, err = sfr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if ts := ctReadInt(t, f.Payload, "ts"); f.Seq != 0x11 || f.Type != Answer || ts < before || ts > time.Now().UnixMilli() {
		t.Errorf("server *ping answer: seq %#x ts %d", f.Seq, ts)
	}
	if c.Err() != nil || s.Err() != nil {
		t.Fatal(c.Err(), s.Err())
	}
}

// ---- frame errors ----

func TestConnBadMagic(t *testing.T) {
	c, raw := ctDialRaw(t, nil)
	raw.Write([]byte("HTTP/1.1 200 OK\r\n\r\n"))
	err := ctWaitDone(t, c)
	var fe *FrameError
	if !errors.As(err, &fe) || fe.Field != "magic" {
		t.Fatalf("want a magic *FrameError, got %v", err)
	}
	t.Log(err)
}

func TestConnFrameTooLarge(t *testing.T) {
	c, raw := ctDialRaw(t, nil, WithMaxPayload(1024))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	hdr := ctQuest(TwoWay, 1, "pushmsg", FlagMsgpack, nil)[:HeaderSize]
	binary.LittleEndian.PutUint32(hdr[8:], 1<<30) // announce 1 GiB, send only the header
	raw.Write(hdr)
	err := ctWaitDone(t, c)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("want ErrFrameTooLarge, got %v", err)
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 64<<20 {
		t.Errorf("allocated %d bytes for a refused frame", d)
	}
}

func TestConnUnknownAnswerDropped(t *testing.T) {
	c, raw := ctDialRaw(t, nil)
	raw.Write(AppendAnswer(nil, 0xdead, FlagMsgpack))
	// The conn still works: a call after the stray answer is answered.
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), "x", nil)
		errc <- err
	}()
	raw.SetReadDeadline(time.Now().Add(ctWaitFor))
	f, err := NewFrameReader(raw, 0).Next()
	if err != nil {
		t.Fatal(err)
	}
	raw.Write(AppendAnswer(nil, f.Seq, FlagMsgpack))
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// ---- JSON ----

func TestConnJSONAnswers(t *testing.T) {
	h := QuestHandlerFunc(func(_ context.Context, f *Frame, _ []byte, r Reply) {
		if f.Flag != FlagJSON {
			t.Errorf("flag %#x", f.Flag)
		}
		if f.Seq == 0x37 {
			r.OK()
		} else {
			r.Error(20004, `no "such" method`)
		}
	})
	_, raw := ctAcceptRaw(t, h)
	raw.SetReadDeadline(time.Now().Add(ctWaitFor))
	fr := NewFrameReader(raw, 0)
	raw.Write(ctQuest(TwoWay, 0x37, "demo.json", FlagJSON, []byte(`{"msg":"hi","uid":123}`)))
	raw.Write(ctQuest(TwoWay, 0x38, "nope", FlagJSON, []byte(`{}`)))
	raw.Write(ctQuest(TwoWay, 0x39, "*ping", FlagJSON, []byte(`{}`)))
	for _, want := range []struct {
		seq     uint32
		status  byte
		payload string
	}{
		{0x37, 0, `{}`},
		{0x38, 1, `{"code":20004,"ex":"no \"such\" method"}`},
	} {
		f, err := fr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if f.Type != Answer || f.Flag != FlagJSON || f.Seq != want.seq || f.Status != want.status || string(f.Payload) != want.payload {
			t.Errorf("answer: flag %#x seq %#x status %d payload %s; want %#x %d %s", f.Flag, f.Seq, f.Status, f.Payload, want.seq, want.status, want.payload)
		}
		if want.status != 0 {
			if e := DecodeError(f); e.Code != 20004 || e.Ex != `no "such" method` {
				t.Errorf("DecodeError: %+v", e)
			}
		}
	}
	f, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if f.Flag != FlagJSON || !bytes.HasPrefix(f.Payload, []byte(`{"ts":`)) {
		t.Errorf("JSON *ping answer: %#x %s", f.Flag, f.Payload)
	}
}

// ---- *key without or after encryption ----

func TestConnAcceptRejectsUnexpectedKey(t *testing.T) {
	c, raw := ctAcceptRaw(t, nil)
	raw.Write(ctQuest(TwoWay, 5, "*key", FlagMsgpack, []byte{0x80}))
	raw.SetReadDeadline(time.Now().Add(ctWaitFor))
	fr := NewFrameReader(raw, 0)
	f, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !f.IsError() || f.Seq != 5 || DecodeError(f).Code != CodeUnknownMethod {
		t.Errorf("want an error answer to seq 5, got status %d seq %d %+v", f.Status, f.Seq, DecodeError(f))
	}
	if _, err := fr.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("want the conn closed after the error answer, got %v", err)
	}
	if err := ctWaitDone(t, c); err == nil {
		t.Error("no reason")
	}
}

// ---- encryption ----

// ctEchoServer answers every two-way quest with {echo: i} and records pushes'
// answers on the client side.
func ctEchoServer(t *testing.T) QuestHandler {
	return QuestHandlerFunc(func(_ context.Context, f *Frame, _ []byte, r Reply) {
		if f.Type == TwoWay {
			if err := AnswerPayload(r, ctMapInt("echo", ctReadInt(t, f.Payload, "i"))); err != nil {
				t.Error(err)
			}
		}
	})
}

func TestConnEncryptedStream(t *testing.T) {
	for _, curve := range []string{"secp256r1", "secp256k1"} {
		for _, bits := range []int{128, 256} {
			t.Run(curve+"/"+map[int]string{128: "aes128", 256: "aes256"}[bits], func(t *testing.T) {
				priv, err := GenerateServerKey(curve, nil)
				if err != nil {
					t.Fatal(err)
				}
				pub, err := ParseServerKey(priv.PublicPEM())
				if err != nil {
					t.Fatal(err)
				}
				pushes := make(chan int64, 100)
				cliH := QuestHandlerFunc(func(_ context.Context, f *Frame, _ []byte, r Reply) {
					pushes <- ctReadInt(t, f.Payload, "i")
					if f.Type == TwoWay {
						r.OK()
					}
				})
				cli, srv := ctPair(t, cliH, ctEchoServer(t),
					// Ping after 100 ms of silence, dead after 300 ms: 200 ms
					// for the answer, which a loaded 2-core machine under
					// -race needs (50/25 ms died there: "nothing received
					// for 100ms (limit 100ms)").
					[]ConnOption{WithEncryption(pub, bits), WithKeepalive(100*time.Millisecond, 100*time.Millisecond)},
					[]ConnOption{WithServerKey(priv)})
				for i := range 50 {
					ans, err := cli.Call(context.Background(), "echo", ctMapInt("i", int64(i)))
					if err != nil {
						t.Fatalf("call %d: %v", i, err)
					}
					if got := ctReadInt(t, ans, "echo"); got != int64(i) {
						t.Fatalf("call %d: echo %d", i, got)
					}
				}
				<-srv.ready // the server's handshake is done: it switched
				if srv.enc == nil || cli.enc == nil {
					t.Fatal("not encrypted")
				}
				// Server to client: a push and a one-way quest.
				if _, err := srv.Call(context.Background(), "pushmsg", ctMapInt("i", 7)); err != nil {
					t.Fatal(err)
				}
				if err := srv.Send("pushevent", ctMapInt("i", 8)); err != nil {
					t.Fatal(err)
				}
				for _, want := range []int64{7, 8} {
					select {
					case got := <-pushes:
						if got != want {
							t.Errorf("push %d, want %d", got, want)
						}
					case <-time.After(ctWaitFor):
						t.Fatal("push not delivered")
					}
				}
				// Idle now: only encrypted *ping round trips keep the client
				// alive past its 300 ms limit.
				select {
				case <-cli.Done():
					t.Fatalf("client died: %v", cli.Err())
				case <-srv.Done():
					t.Fatalf("server died: %v", srv.Err())
				case <-time.After(700 * time.Millisecond):
				}
			})
		}
	}
}

func TestConnEncryptedWrongKey(t *testing.T) {
	priv, _ := GenerateServerKey("secp256r1", nil)
	other, _ := GenerateServerKey("secp256r1", nil)
	cli, srv := ctPair(t, nil, ctEchoServer(t),
		[]ConnOption{WithEncryption(other.Public(), 128)},
		[]ConnOption{WithServerKey(priv)})
	// The client decrypts the *key answer into garbage: a frame error (the
	// magic is checked first) kills it, and the server goes with it.
	err := ctWaitDone(t, cli)
	var fe *FrameError
	if !errors.As(err, &fe) {
		t.Errorf("want a frame error, got %v", err)
	}
	ctWaitDone(t, srv)
}

func TestConnAcceptPlaintextWithServerKey(t *testing.T) {
	priv, _ := GenerateServerKey("secp256k1", nil)
	cli, srv := ctPair(t, nil, ctEchoServer(t), nil, []ConnOption{WithServerKey(priv)})
	ans, err := cli.Call(context.Background(), "echo", ctMapInt("i", 3))
	if err != nil || ctReadInt(t, ans, "echo") != 3 {
		t.Fatalf("plaintext call: %x %v", ans, err)
	}
	<-srv.ready
	if srv.enc != nil || srv.pw != nil {
		t.Error("server switched to encryption without *key")
	}
}

// ctKeyPeer is a raw gateway that has read the client's *key quest.
type ctKeyPeer struct {
	nc      net.Conn
	seq     uint32
	key, iv []byte
}

// ctKeyServer accepts one raw connection, reads the *key quest and derives the
// session key the way the gateway does; the test decides what to answer.
func ctKeyServer(t *testing.T, priv *ServerPrivateKey) (addr string, got <-chan ctKeyPeer) {
	ln := ctListen(t)
	ch := make(chan ctKeyPeer, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { nc.Close() })
		f, err := NewFrameReader(nc, 0).Next()
		if err != nil || string(f.Method) != "*key" {
			t.Errorf("first frame: %v", err)
			return
		}
		req, err := ParseKeyExchangeRequest(f.Payload)
		if err != nil {
			t.Error(err)
			return
		}
		key, iv, err := priv.Accept(req.PublicKey, req.Bits)
		if err != nil {
			t.Error(err)
			return
		}
		ch <- ctKeyPeer{nc, f.Seq, key, iv}
	}()
	return ln.Addr().String(), ch
}

func ctRecvKeyPeer(t *testing.T, ch <-chan ctKeyPeer) ctKeyPeer {
	t.Helper()
	select {
	case k := <-ch:
		return k
	case <-time.After(ctWaitFor):
		t.Fatal("no *key quest")
	}
	return ctKeyPeer{}
}

func TestConnKeyAnswerErrorKillsConn(t *testing.T) {
	priv, _ := GenerateServerKey("secp256r1", nil)
	addr, got := ctKeyServer(t, priv)
	c, err := Dial(context.Background(), addr, nil, WithEncryption(priv.Public(), 256))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := ctRecvKeyPeer(t, got)
	w, err := NewStreamWriter(k.nc, k.key, k.iv)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(AppendErrorAnswer(nil, k.seq, FlagMsgpack, 10002, "nope"))
	err = ctWaitDone(t, c)
	var e *Error
	if !errors.As(err, &e) || e.Code != 10002 || e.Method != "*key" {
		t.Fatalf("want the *key error answer, got %v", err)
	}
	t.Log(err)
}

func TestConnKeyAnswerTimeoutKillsConn(t *testing.T) {
	priv, _ := GenerateServerKey("secp256k1", nil)
	addr, got := ctKeyServer(t, priv)
	c, err := Dial(context.Background(), addr, nil, WithEncryption(priv.Public(), 128),
		WithCallTimeout(50*time.Millisecond), WithKeepalive(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctRecvKeyPeer(t, got)
	if err := ctWaitDone(t, c); !errors.Is(err, ErrTimeout) {
		t.Fatalf("want ErrTimeout, got %v", err)
	}
}

// TestConnPackageModeClient is a package-mode client (spec §10.4), as the
// official C++ client and Python SDK speak it, talking to Accept.
func TestConnPackageModeClient(t *testing.T) {
	for _, curve := range []string{"secp256r1", "secp256k1"} {
		t.Run(curve, func(t *testing.T) {
			priv, _ := GenerateServerKey(curve, nil)
			srvCh := make(chan *Conn, 1)
			srvH := QuestHandlerFunc(func(_ context.Context, f *Frame, _ []byte, r Reply) {
				if err := AnswerPayload(r, ctMapInt("echo", ctReadInt(t, f.Payload, "i"))); err != nil {
					t.Error(err)
				}
			})
			ln := ctListen(t)
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				s, err := Accept(context.Background(), nc, srvH, WithServerKey(priv))
				if err != nil {
					t.Error(err)
				}
				srvCh <- s
			}()
			raw, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(ctWaitFor))

			kx, err := NewKeyExchange(priv.Public(), 128, nil)
			if err != nil {
				t.Fatal(err)
			}
			// {bits: 128, publicKey: str (as the C++ client sends it), streamMode: false}
			payload := mpack.AppendMapHeader(nil, 3)
			payload = mpack.AppendIntGo(mpack.AppendStr(payload, "bits"), 128)
			payload = mpack.AppendStr(mpack.AppendStr(payload, "publicKey"), kx.PublicKey())
			payload = mpack.AppendBool(mpack.AppendStr(payload, "streamMode"), false)
			if _, err := raw.Write(ctQuest(TwoWay, 1, "*key", FlagMsgpack, payload)); err != nil {
				t.Fatal(err)
			}
			pr, _ := NewPackageReader(bufio.NewReader(raw), kx.Key(), kx.IV(), 0)
			pw, _ := NewPackageWriter(raw, kx.Key(), kx.IV(), 0)
			fr := NewFrameReader(pr, 0)
			f, err := fr.Next()
			if err != nil {
				t.Fatal(err)
			}
			if f.Type != Answer || f.Seq != 1 || f.Status != 0 {
				t.Fatalf("*key answer: %v seq %d status %d", f.Type, f.Seq, f.Status)
			}
			s := <-srvCh
			if s == nil {
				t.FailNow()
			}
			defer s.Close()
			// Client to server: two quests in one write, answered in order.
			buf := ctQuest(TwoWay, 2, "echo", FlagMsgpack, ctMapInt("i", 42))
			buf = append(buf, ctQuest(TwoWay, 3, "echo", FlagMsgpack, ctMapInt("i", 43))...)
			if _, err := pw.Write(buf); err != nil {
				t.Fatal(err)
			}
			for _, want := range []int64{42, 43} {
				f, err := fr.Next()
				if err != nil {
					t.Fatal(err)
				}
				if got := ctReadInt(t, f.Payload, "echo"); got != want {
					t.Errorf("echo %d, want %d", got, want)
				}
			}
			// Server to client: a push, answered by the package client.
			errc := make(chan error, 1)
			go func() {
				_, err := s.Call(context.Background(), "pushmsg", ctMapInt("i", 9))
				errc <- err
			}()
			f, err = fr.Next()
			if err != nil {
				t.Fatal(err)
			}
			if string(f.Method) != "pushmsg" || ctReadInt(t, f.Payload, "i") != 9 {
				t.Fatalf("push: %q", f.Method)
			}
			if _, err := pw.Write(AppendAnswer(nil, f.Seq, FlagMsgpack)); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("push answer: %v", err)
			}
		})
	}
}

func TestConnOptionsValidate(t *testing.T) {
	priv, _ := GenerateServerKey("secp256r1", nil)
	for _, opts := range [][]ConnOption{
		{WithKeepalive(time.Second, 0)},
		{WithCallTimeout(-1)},
		{WithMaxPayload(-1)},
		{WithEncryption(priv.Public(), 192)},
		{WithServerKey(priv)},
	} {
		_, err := Dial(context.Background(), "127.0.0.1:1", nil, opts...)
		var oe *net.OpError
		if err == nil || errors.As(err, &oe) {
			t.Errorf("Dial accepted bad options (it dialled: %v)", err)
		}
	}
}

func TestConnShutdownFlushesAnswers(t *testing.T) {
	const n = 200
	replies := make(chan Reply, n)
	srvH := QuestHandlerFunc(func(_ context.Context, _ *Frame, _ []byte, r Reply) { replies <- r })
	cli, srv := ctPair(t, nil, srvH, nil, nil)
	errs := make(chan error, n)
	for range n {
		cli.Go("pushmsg", nil, 0, func(_ []byte, err error) { errs <- err })
	}
	for range n {
		select {
		case r := <-replies:
			if err := r.OK(); err != nil {
				t.Fatal(err)
			}
		case <-time.After(ctWaitFor):
			t.Fatal("quests not delivered")
		}
	}
	// Every answer is queued, maybe not yet written: Shutdown must send them.
	ctx, cancel := context.WithTimeout(context.Background(), ctWaitFor)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("answer lost: %v", err)
		}
	}
	if !errors.Is(srv.Err(), ErrConnClosed) {
		t.Errorf("Err after Shutdown: %v", srv.Err())
	}
	if err := (Reply{a: srv, seq: 1}).OK(); !errors.Is(err, ErrConnClosed) {
		t.Errorf("answer after Shutdown: %v", err)
	}
}

// BenchmarkConnQuestAnswer measures the push path of an accepted connection:
// a two-way quest read, handed to the handler, answered and written.
func BenchmarkConnQuestAnswer(b *testing.B) {
	h := QuestHandlerFunc(func(_ context.Context, _ *Frame, _ []byte, r Reply) { _ = r.OK() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan *Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c, _ := Accept(context.Background(), nc, h)
		ch <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	srv := <-ch
	defer srv.Close()
	// A batch of 100 pushes, written at once; answers are read as a stream.
	payload := ctMapInt("mid", 123456789)
	var batch []byte
	for i := range 100 {
		batch = append(batch, ctQuest(TwoWay, uint32(i+1), "pushmsg", FlagMsgpack, payload)...)
	}
	answerSize := len(AppendAnswer(nil, 1, FlagMsgpack))
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i += 100 {
			if _, err := raw.Write(batch); err != nil {
				return
			}
		}
	}()
	rounds := (b.N + 99) / 100
	if _, err := io.CopyN(io.Discard, raw, int64(rounds*100*answerSize)); err != nil {
		b.Fatal(err)
	}
}
