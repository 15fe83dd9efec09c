package bridge

import (
	"context"
	"sync"
	"testing"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// BenchmarkHandlePush measures the whole path against the real broker: one
// goroutine hands pushes over (as the connection reader does) and every push
// is answered after its ack. Allocations include the Kafka client's.
func BenchmarkHandlePush(b *testing.B) {
	br, _ := testBridge(b, nil)
	var wg sync.WaitGroup
	reply := rtm.NewReply(func(code int, ex string) error {
		if code != 0 {
			b.Errorf("answer %d %s", code, ex)
		}
		wg.Done()
		return nil
	})
	p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, MType: 30, Msg: []byte("hello, world"), Attrs: []byte("{}")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.To, p.MID = int64(i%64), int64(i)
		wg.Add(1)
		br.HandlePush(context.Background(), &p, reply)
	}
	wg.Wait()
}
