package spool

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// benchRecord is a 1 KiB-value record shaped like the bridge's.
func benchRecord() Record {
	r := testRec(7, 1024)
	r.Time = 0
	return r
}

func reportSpool(b *testing.B, s *Spool, start time.Time) {
	el := time.Since(start).Seconds()
	st := s.Stats()
	b.ReportMetric(float64(st.Appended)/el, "records/s")
	b.ReportMetric(float64(st.FsyncCount)/el, "fsyncs/s")
	if st.FsyncCount > 0 {
		b.ReportMetric(float64(st.Appended)/float64(st.FsyncCount), "records/fsync")
		b.ReportMetric(float64(st.FsyncTotal.Microseconds())/float64(st.FsyncCount), "µs/fsync")
	}
}

// BenchmarkAppend measures durable appends of 1 KiB records: one caller
// waiting for each fsync, many concurrent callers sharing fsyncs, and one
// caller pipelining with AppendAsync (the bridge's reader goroutine).
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	o := Options{MaxBytes: 16 << 30}
	b.Run("serial", func(b *testing.B) {
		s := mustOpen(b, b.TempDir(), o)
		rec := benchRecord()
		b.ReportAllocs()
		b.SetBytes(1024)
		start := time.Now()
		b.ResetTimer()
		for range b.N {
			if err := s.Append(ctx, rec); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportSpool(b, s, start)
	})
	b.Run("parallel64", func(b *testing.B) {
		s := mustOpen(b, b.TempDir(), o)
		b.ReportAllocs()
		b.SetBytes(1024)
		b.SetParallelism(32) // × GOMAXPROCS (2 here) goroutines
		start := time.Now()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			rec := benchRecord()
			for pb.Next() {
				if err := s.Append(ctx, rec); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		reportSpool(b, s, start)
	})
	b.Run("async", func(b *testing.B) {
		s := mustOpen(b, b.TempDir(), o)
		rec := []Record{benchRecord()}
		const window = 4096 // records in flight, like the bridge's window
		sem := make(chan struct{}, window)
		var failed atomic.Int64
		done := func(err error) {
			if err != nil {
				failed.Add(1)
			}
			<-sem
		}
		b.ReportAllocs()
		b.SetBytes(1024)
		start := time.Now()
		b.ResetTimer()
		for range b.N {
			sem <- struct{}{}
			if err := s.AppendAsync(ctx, rec, done); err != nil {
				b.Fatal(err)
			}
		}
		for range window {
			sem <- struct{}{}
		}
		b.StopTimer()
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d appends failed", n)
		}
		reportSpool(b, s, start)
	})
}

// BenchmarkDrain measures the drainer's side without Kafka: Peek batches of
// up to 1024 records / 1 MiB of 1 KiB records and Trim each (one checkpoint
// write with two fsyncs per batch).
func BenchmarkDrain(b *testing.B) {
	ctx := context.Background()
	s := mustOpen(b, b.TempDir(), Options{MaxBytes: 16 << 30})
	rec := []Record{benchRecord()}
	const window = 4096
	sem := make(chan struct{}, window)
	done := func(error) { <-sem }
	for range b.N {
		sem <- struct{}{}
		if err := s.AppendAsync(ctx, rec, done); err != nil {
			b.Fatal(err)
		}
	}
	for range window {
		sem <- struct{}{}
	}
	b.ReportAllocs()
	b.SetBytes(1024)
	b.ResetTimer()
	start := time.Now()
	n, batches := 0, 0
	for n < b.N {
		es, err := s.Peek(1024, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Trim(es[len(es)-1].Pos); err != nil {
			b.Fatal(err)
		}
		n += len(es)
		batches++
	}
	b.StopTimer()
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(n)/el, "records/s")
	b.ReportMetric(float64(batches)/el, "trims/s")
	if s.Len() != 0 {
		b.Fatalf("Len %d after the drain", s.Len())
	}
}
