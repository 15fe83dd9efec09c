package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRoundTripInOrder(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	ctx := context.Background()
	var want []Record
	for i := range 50 {
		r := testRec(i, i*7)
		want = append(want, r)
		if err := s.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// nil and empty slices, no headers, several records in one call.
	odd := []Record{
		{Topic: "t", Key: nil, Value: nil, Time: 5},
		{Topic: "", Key: []byte{}, Value: []byte{}, Headers: []Header{{Key: "", Value: nil}, {Key: "e", Value: []byte{}}}, Time: 6},
		{Topic: "t2", Key: []byte("k"), Value: []byte("v"), Headers: []Header{}, Time: 7},
	}
	if err := s.Append(ctx, odd...); err != nil {
		t.Fatal(err)
	}
	odd[2].Headers = nil // an empty header list comes back as nil
	want = append(want, odd...)
	if got := s.Len(); got != len(want) {
		t.Fatalf("Len = %d, want %d", got, len(want))
	}

	// Peek does not remove.
	a, err := s.Peek(10, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Peek(10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 10 || len(b) != 10 || a[9].Pos != b[9].Pos {
		t.Fatalf("two Peeks differ: %d/%d records", len(a), len(b))
	}

	got := drainAll(t, s, 7, 0)
	if len(got) != len(want) {
		t.Fatalf("drained %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameRecord(got[i].Record, want[i]) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i].Record, want[i])
		}
		if got[i].Pos.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, got[i].Pos.Seq)
		}
	}
	st := s.Stats()
	if st.Records != 0 || st.Bytes != 0 || st.Appended != uint64(len(want)) || st.Trimmed != uint64(len(want)) {
		t.Fatalf("stats after drain: %+v", st)
	}
	if es, err := s.Peek(0, 0); err != nil || len(es) != 0 {
		t.Fatalf("Peek on empty spool = %d entries, %v", len(es), err)
	}
	// Trimming an already trimmed position is a no-op.
	if err := s.Trim(got[3].Pos); err != nil {
		t.Fatalf("re-Trim: %v", err)
	}
}

func TestPeekByteLimit(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	ctx := context.Background()
	for i := range 20 {
		if err := s.Append(ctx, testRec(i, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := frameSize(&[]Record{testRec(0, 1000)}[0])
	if err != nil {
		t.Fatal(err)
	}
	es, err := s.Peek(100, 3*fs+fs/2)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 {
		t.Fatalf("Peek(100, 3.5 records) = %d records, want 3", len(es))
	}
	// A limit below one record still returns one.
	es, err = s.Peek(100, 10)
	if err != nil || len(es) != 1 || es[0].Pos.Seq != 1 {
		t.Fatalf("Peek(100, 10) = %d records, %v; want the first one", len(es), err)
	}
	if got := drainAll(t, s, 0, fs*2); len(got) != 20 {
		t.Fatalf("drained %d, want 20", len(got))
	}
}

func TestReopenKeepsUntrimmedInOrder(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := mustOpen(t, dir, Options{SegmentBytes: 4096})
	for i := range 40 {
		if err := s.Append(ctx, testRec(i, 300)); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.Peek(15, 1<<20)
	if err != nil || len(es) != 15 {
		t.Fatalf("Peek: %d, %v", len(es), err)
	}
	if err := s.Trim(es[14].Pos); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, testRec(99, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}

	s2 := mustOpen(t, dir, Options{SegmentBytes: 4096})
	rep := s2.Stats().Recovered
	if rep.Records != 25 || rep.CheckpointSeq != 15 || rep.TruncatedBytes != 0 || len(rep.Cuts) != 0 {
		t.Fatalf("recovery report %+v", rep)
	}
	for i := 40; i < 45; i++ {
		if err := s2.Append(ctx, testRec(i, 300)); err != nil {
			t.Fatal(err)
		}
	}
	got := drainAll(t, s2, 4, 0)
	if len(got) != 30 {
		t.Fatalf("after reopen drained %d records, want 30", len(got))
	}
	for k, e := range got {
		if want := testRec(15+k, 300); !sameRecord(e.Record, want) {
			t.Fatalf("record %d after reopen is %q, want %q", k, e.Key, want.Key)
		}
		if e.Pos.Seq != uint64(16+k) {
			t.Fatalf("record %d has seq %d, want %d", k, e.Pos.Seq, 16+k)
		}
	}
}

func TestGroupCommit(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	ctx := context.Background()
	const writers, each = 64, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := testRec(i, 100)
				r.Key = []byte(fmt.Sprintf("%d/%d", w, i))
				if err := s.Append(ctx, r); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	el := time.Since(start)
	st := s.Stats()
	total := uint64(writers * each)
	t.Logf("group commit: %d records from %d goroutines in %v with %d fsyncs: %.1f records per fsync, mean fsync %v, max %v",
		total, writers, el.Round(time.Millisecond), st.FsyncCount, float64(total)/float64(st.FsyncCount),
		st.FsyncTotal/time.Duration(st.FsyncCount), st.FsyncMax)
	if st.Appended != total {
		t.Fatalf("Appended = %d, want %d", st.Appended, total)
	}
	if st.FsyncCount == 0 || st.FsyncCount > total/4 {
		t.Fatalf("%d fsyncs for %d concurrent records: group commit is not sharing fsyncs", st.FsyncCount, total)
	}
	var hist uint64
	for _, n := range st.FsyncHist {
		hist += n
	}
	if hist != st.FsyncCount {
		t.Fatalf("histogram counts %d fsyncs, FsyncCount %d", hist, st.FsyncCount)
	}
	// Each goroutine's records are in its own order.
	next := make(map[string]int)
	for _, e := range drainAll(t, s, 0, 0) {
		var w, i int
		if _, err := fmt.Sscanf(string(e.Key), "%d/%d", &w, &i); err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprint(w)
		if next[k] != i {
			t.Fatalf("goroutine %d: record %d arrived when %d was due", w, i, next[k])
		}
		next[k]++
	}
}

func TestAppendAsyncOrderAndCallbacks(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{SyncInterval: time.Millisecond})
	ctx := context.Background()
	const n = 500
	done := make(chan int, n)
	var mu sync.Mutex
	var order []int
	for i := range n {
		recs := []Record{testRec(i, 64)}
		err := s.AppendAsync(ctx, recs, func(err error) {
			if err != nil {
				t.Errorf("record %d: %v", i, err)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			done <- i
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		<-done
	}
	for k, i := range order {
		if k != i {
			t.Fatalf("completion %d was for record %d", k, i)
		}
	}
	st := s.Stats()
	t.Logf("AppendAsync from one goroutine: %d records, %d fsyncs", n, st.FsyncCount)
	if st.FsyncCount > n/4 {
		t.Fatalf("%d fsyncs for %d pipelined records", st.FsyncCount, n)
	}
	for k, e := range drainAll(t, s, 0, 0) {
		if !sameRecord(e.Record, testRec(k, 64)) {
			t.Fatalf("record %d out of order: key %q", k, e.Key)
		}
	}
}

func TestLockHeldWithinOneProcess(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("spool dir %s is held by another running rtm2kafka (pid %d)", dir, os.Getpid())
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("second Open error %q does not say %q", err, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFullAndRoomAfterTrim(t *testing.T) {
	dir := t.TempDir()
	const budget = 16 << 10
	s := mustOpen(t, dir, Options{MaxBytes: budget, SegmentBytes: 4 << 10})
	ctx := context.Background()
	fs, _ := frameSize(&[]Record{testRec(0, 1024)}[0])
	n := 0
	var err error
	for ; n < 100; n++ {
		if err = s.Append(ctx, testRec(n, 1024)); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("append %d: %v, want ErrFull", n, err)
	}
	if want := int(budget / fs); n != want {
		t.Fatalf("%d records of %d bytes fit in a budget of %d, want %d", n, fs, budget, want)
	}
	t.Logf("ErrFull after %d records: %v", n, err)
	if got := s.Len(); got != n {
		t.Fatalf("Len = %d after the refused append, want %d (nothing written)", got, n)
	}
	if s.Bytes() > budget {
		t.Fatalf("Bytes %d over budget %d", s.Bytes(), budget)
	}
	// A multi-record append that does not fit is refused whole, even though
	// its first record alone would fit.
	if err := s.Append(ctx, testRec(500, 500), testRec(501, 500)); !errors.Is(err, ErrFull) {
		t.Fatalf("small append on a full spool: %v", err)
	}
	if st := s.Stats(); st.Rejected != 3 {
		t.Fatalf("Rejected = %d, want 3", st.Rejected)
	}
	es, err := s.Peek(2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Trim(es[1].Pos); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Append(ctx, testRec(n+i, 1024)); err != nil {
			t.Fatalf("append after Trim: %v", err)
		}
	}
	if err := s.Append(ctx, testRec(n+2, 1024)); !errors.Is(err, ErrFull) {
		t.Fatalf("third append after trimming two: %v, want ErrFull", err)
	}
	got := drainAll(t, s, 0, 0)
	if len(got) != n || got[0].Pos.Seq != 3 || !sameRecord(got[n-1].Record, testRec(n+1, 1024)) {
		t.Fatalf("drained %d records from seq %d", len(got), got[0].Pos.Seq)
	}
}

func TestTooLarge(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 1 << 20, SegmentBytes: 8 << 10})
	ctx := context.Background()
	if err := s.Append(ctx, testRec(0, 9<<10)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("record over a segment: %v, want ErrTooLarge", err)
	}
	if err := s.Append(ctx, Record{Topic: strings.Repeat("x", 70000)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("70000-byte topic: %v, want ErrTooLarge", err)
	}
	if err := s.Append(ctx, testRec(1, 10)); err != nil {
		t.Fatalf("a fitting record after refused ones: %v", err)
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d, want 1", s.Len())
	}
}

func TestTrimAcrossSegmentsDeletesFiles(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{SegmentBytes: 2048})
	ctx := context.Background()
	for i := range 30 {
		if err := s.Append(ctx, testRec(i, 400)); err != nil { // ~4 per segment
			t.Fatal(err)
		}
	}
	files := segFiles(t, dir)
	if len(files) < 6 {
		t.Fatalf("%d segment files for 30 records in 2 KiB segments", len(files))
	}
	if st := s.Stats(); st.Segments != len(files) {
		t.Fatalf("Stats.Segments = %d, files %d", st.Segments, len(files))
	}
	// Trim to the middle of the third segment: the first two files go.
	es, err := s.Peek(10, 1<<20)
	if err != nil || len(es) != 10 {
		t.Fatalf("Peek: %d, %v", len(es), err)
	}
	if err := s.Trim(es[9].Pos); err != nil {
		t.Fatal(err)
	}
	left := segFiles(t, dir)
	if len(left) >= len(files) || left[0] == files[0] {
		t.Fatalf("after trimming 10 records files %v, before %v", left, files)
	}
	// The oldest file left holds record 11, the new head.
	if left[0] > segName(11) || (len(left) > 1 && left[1] <= segName(11)) {
		t.Fatalf("after trimming up to record 10 the files are %v", left)
	}
	if st := s.Stats(); st.Segments != len(left) || st.Records != 20 {
		t.Fatalf("stats after trim: %+v", st)
	}
	drainAll(t, s, 3, 0)
	// The last (active) segment stays until the next append starts a new one.
	if left := segFiles(t, dir); len(left) != 1 {
		t.Fatalf("after a full drain files %v, want only the active one", left)
	}
	if err := s.Append(ctx, testRec(100, 10)); err != nil {
		t.Fatal(err)
	}
	left = segFiles(t, dir)
	if len(left) != 1 || left[0] != segName(31) {
		t.Fatalf("after an append to the drained spool files %v, want [%s]", left, segName(31))
	}
	st := s.Stats()
	if st.Records != 1 || st.DiskBytes != fileSize(t, filepath.Join(dir, left[0])) {
		t.Fatalf("stats %+v", st)
	}
}

func TestWaitWakesOnAppendAndClose(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	ctx := context.Background()
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := s.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on empty spool: %v", err)
	}
	woke := make(chan error, 1)
	go func() { woke <- s.Wait(ctx) }()
	if err := s.Append(ctx, testRec(1, 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woke:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake on Append")
	}
	drainAll(t, s, 0, 0)
	go func() { woke <- s.Wait(ctx) }()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woke:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Wait after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake on Close")
	}
	if _, err := s.Peek(1, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Peek after Close: %v", err)
	}
}

func TestOldestAgeAndTimeStamp(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := mustOpen(t, t.TempDir(), Options{Now: clock})
	ctx := context.Background()
	if s.OldestAge() != 0 {
		t.Fatal("OldestAge of an empty spool is not 0")
	}
	if err := s.Append(ctx, Record{Topic: "a"}); err != nil { // Time 0: stamped now
		t.Fatal(err)
	}
	advance(3 * time.Second)
	if err := s.Append(ctx, Record{Topic: "b"}); err != nil {
		t.Fatal(err)
	}
	advance(2 * time.Second)
	if got := s.OldestAge(); got != 5*time.Second {
		t.Fatalf("OldestAge = %v, want 5s", got)
	}
	es, _ := s.Peek(1, 0)
	if es[0].Time != 1_800_000_000_000 {
		t.Fatalf("stamped Time = %d", es[0].Time)
	}
	if err := s.Trim(es[0].Pos); err != nil {
		t.Fatal(err)
	}
	if got := s.OldestAge(); got != 2*time.Second {
		t.Fatalf("OldestAge after trimming the first = %v, want 2s", got)
	}
	if st := s.Stats(); st.OldestAgeMs != 2000 {
		t.Fatalf("OldestAgeMs = %d", st.OldestAgeMs)
	}
}

func TestAppendCancelledContextWritesNothing(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Append(ctx, testRec(1, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context: %v", err)
	}
	if err := s.AppendAsync(ctx, []Record{testRec(1, 1)}, func(error) { t.Error("callback after a refused AppendAsync") }); !errors.Is(err, context.Canceled) {
		t.Fatalf("AppendAsync with a cancelled context: %v", err)
	}
	if s.Len() != 0 {
		t.Fatalf("Len = %d", s.Len())
	}
}

func TestConcurrentAppendPeekTrimClose(t *testing.T) {
	// A race-detector workout: appenders, one drainer, then Close.
	s := mustOpen(t, t.TempDir(), Options{SegmentBytes: 8 << 10})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if err := s.Append(ctx, testRec(w*1000+i, 200)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	drained := make(chan int)
	go func() {
		n := 0
		for {
			if err := s.Wait(ctx); err != nil {
				drained <- n
				return
			}
			es, err := s.Peek(50, 0)
			if err != nil {
				t.Error(err)
				drained <- n
				return
			}
			if len(es) == 0 {
				continue
			}
			n += len(es)
			if err := s.Trim(es[len(es)-1].Pos); err != nil {
				t.Error(err)
			}
			_ = s.Stats()
		}
	}()
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for s.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if n := <-drained; n != 800 {
		t.Fatalf("drained %d of 800", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAppendCancelledWhileQueuedWritesNothing(t *testing.T) {
	// A long linger keeps the request queued in the writer while the
	// caller's context ends: the request must be withdrawn, not written.
	s := mustOpen(t, t.TempDir(), Options{SyncInterval: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := s.Append(ctx, testRec(1, 10))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "nothing written") {
		t.Fatalf("Append: %v", err)
	}
	if err := s.Append(context.Background(), testRec(2, 10)); err != nil {
		t.Fatal(err)
	}
	es, err := s.Peek(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || !sameRecord(es[0].Record, testRec(2, 10)) || es[0].Pos.Seq != 1 {
		t.Fatalf("spool holds %d records, first %q", len(es), es[0].Key)
	}
}

func TestPeekDetectsLaterCorruption(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	if err := s.Append(context.Background(), testRec(1, 100)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, segFiles(t, dir)[0])
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, segHdrLen+60); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Peek(0, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Peek of a record changed on disk: %v, want ErrCorrupt", err)
	}
}

func TestEmptyCountsAppendsInFlight(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{SyncInterval: 100 * time.Millisecond})
	if !s.Empty() {
		t.Fatal("a new spool is not Empty")
	}
	done := make(chan error, 1)
	if err := s.AppendAsync(context.Background(), []Record{testRec(1, 1)}, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 || s.Empty() {
		t.Fatalf("during the linger: Len %d, Empty %v; want 0, false", s.Len(), s.Empty())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 || s.Empty() {
		t.Fatalf("after the append: Len %d, Empty %v", s.Len(), s.Empty())
	}
	drainAll(t, s, 0, 0)
	if !s.Empty() {
		t.Fatal("not Empty after a full drain")
	}
}

func TestCloseCompletesQueuedAppends(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{SyncInterval: 200 * time.Millisecond})
	const n = 10
	results := make(chan error, n)
	for i := range n {
		if err := s.AppendAsync(context.Background(), []Record{testRec(i, 10)}, func(err error) { results <- err }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		select {
		case err := <-results:
			if err != nil {
				t.Fatalf("queued append completed with %v", err)
			}
		default:
			t.Fatal("Close returned before completing a queued append")
		}
	}
	if err := s.AppendAsync(context.Background(), []Record{testRec(0, 1)}, func(error) { t.Error("callback after Close") }); !errors.Is(err, ErrClosed) {
		t.Fatalf("AppendAsync after Close: %v", err)
	}
	var want []Record
	for i := range n {
		want = append(want, testRec(i, 10))
	}
	checkRecords(t, dir, Options{}, want)
}
