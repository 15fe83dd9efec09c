package rtmsim

import (
	"context"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// BenchmarkGenerate measures the simulator and a raw client over loopback:
// one push per op, answered at once.
func BenchmarkGenerate(b *testing.B) {
	s := New(Config{PID: testPID, Secret: testSecret})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	signer := rtm.NewSigner(testPID, testSecret)
	h := rtm.QuestHandlerFunc(func(_ context.Context, _ *rtm.Frame, _ []byte, r rtm.Reply) { _ = r.OK() })
	conn, err := rtm.Dial(b.Context(), s.Addr(), h, rtm.WithKeepalive(0, 0))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	q := &rtm.SetListenAll{P2P: true, Group: true, Room: true, Ev: true}
	if _, err := conn.Call(b.Context(), q.Method(), q.AppendPayload(nil, signer.Sign(q.Method(), time.Now()))); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	res, err := s.Generate(b.Context(), LoadConfig{Total: b.N, BodySize: 200})
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if res.Answered != int64(b.N) {
		b.Fatalf("answered %d of %d", res.Answered, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
}
