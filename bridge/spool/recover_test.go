package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSpool appends recs one call each into a fresh spool in dir, closes
// it, and returns the segment files' names.
func writeSpool(t *testing.T, dir string, o Options, recs []Record) []string {
	t.Helper()
	s := mustOpen(t, dir, o)
	for _, r := range recs {
		if err := s.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return segFiles(t, dir)
}

// checkRecords opens dir and checks that it holds exactly want, in order,
// with nothing beyond; it returns the open spool.
func checkRecords(t *testing.T, dir string, o Options, want []Record) *Spool {
	t.Helper()
	s := mustOpen(t, dir, o)
	if s.Len() != len(want) {
		t.Fatalf("Len = %d, want %d (report %+v)", s.Len(), len(want), s.Stats().Recovered)
	}
	es, err := s.Peek(len(want)+10, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != len(want) {
		t.Fatalf("Peek = %d records, want %d", len(es), len(want))
	}
	for i := range want {
		if !sameRecord(es[i].Record, want[i]) {
			t.Fatalf("record %d differs after recovery: key %q, want %q", i, es[i].Key, want[i].Key)
		}
	}
	return s
}

func TestRecoverTornTailAtEveryOffset(t *testing.T) {
	dir := t.TempDir()
	var recs []Record
	for i := range 6 {
		recs = append(recs, testRec(i, 20+30*i))
	}
	files := writeSpool(t, dir, Options{}, recs)
	if len(files) != 1 {
		t.Fatalf("segments %v, want one", files)
	}
	path := filepath.Join(dir, files[0])
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	last, _ := frameSize(&recs[5])
	lastStart := int64(len(orig)) - last
	quiet := Options{Logger: testLogger(t)}
	for cut := lastStart; cut < int64(len(orig)); cut++ {
		for _, f := range segFiles(t, dir) {
			if err := os.Remove(filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, orig[:cut], 0o640); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, quiet)
		if err != nil {
			t.Fatalf("cut at %d: Open failed: %v", cut, err)
		}
		rep := s.Stats().Recovered
		if cut == lastStart {
			if len(rep.Cuts) != 0 || rep.TruncatedBytes != 0 {
				t.Fatalf("clean end at %d reported as a cut: %+v", cut, rep)
			}
		} else if len(rep.Cuts) != 1 || rep.TruncatedBytes != cut-lastStart || rep.DroppedRecords != 1 ||
			rep.Cuts[0].Offset != lastStart || rep.Cuts[0].File != files[0] {
			t.Fatalf("cut at %d (%d bytes into the last record): report %+v", cut, cut-lastStart, rep)
		}
		if got := fileSize(t, path); got != lastStart {
			t.Fatalf("cut at %d: file is %d bytes after Open, want %d", cut, got, lastStart)
		}
		if s.Len() != 5 {
			t.Fatalf("cut at %d: Len = %d, want 5", cut, s.Len())
		}
		// The spool keeps working, and the next restart is clean.
		if err := s.Append(context.Background(), recs[5]); err != nil {
			t.Fatalf("cut at %d: Append after recovery: %v", cut, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = checkRecords(t, dir, quiet, recs)
		if rep := s.Stats().Recovered; len(rep.Cuts) != 0 {
			t.Fatalf("cut at %d: second restart cut again: %+v", cut, rep)
		}
		if es, _ := s.Peek(10, 0); es[5].Pos.Seq != 6 {
			t.Fatalf("cut at %d: re-appended record has seq %d, want 6", cut, es[5].Pos.Seq)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("recovered from a cut at each of %d offsets in the last record", len(orig)-int(lastStart))
}

func TestRecoverFlippedByte(t *testing.T) {
	var recs []Record
	for i := range 10 {
		recs = append(recs, testRec(i, 100))
	}
	fs, _ := frameSize(&recs[0])
	rec3 := segHdrLen + 3*fs // offset of the fourth record
	for _, tc := range []struct {
		name    string
		off     int64 // byte flipped
		dropped int64
		reason  string
	}{
		{"value", rec3 + fs/2, 7, "CRC mismatch"},
		{"crc", rec3 + 5, 7, "CRC mismatch"},
		{"seq", rec3 + frameHdr, 7, "CRC mismatch"},
		{"length high byte", rec3 + 3, 1, "implausible body length"},
		{"length low byte", rec3, 1, "CRC mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := writeSpool(t, dir, Options{}, recs)
			path := filepath.Join(dir, files[0])
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[tc.off] ^= 0x40
			if err := os.WriteFile(path, b, 0o640); err != nil {
				t.Fatal(err)
			}
			s := checkRecords(t, dir, Options{}, recs[:3])
			rep := s.Stats().Recovered
			if len(rep.Cuts) != 1 || rep.Cuts[0].Offset != rec3 || rep.TruncatedBytes != int64(len(b))-rec3 ||
				rep.DroppedRecords != tc.dropped || !strings.Contains(rep.Cuts[0].Reason, tc.reason) {
				t.Fatalf("report %+v, want a cut at %d dropping %d for %q", rep, rec3, tc.dropped, tc.reason)
			}
		})
	}
}

func TestRecoverCorruptOlderSegmentKeepsLaterOnes(t *testing.T) {
	dir := t.TempDir()
	o := Options{SegmentBytes: 1024}
	var recs []Record
	for i := range 12 {
		recs = append(recs, testRec(i, 200)) // 3 per segment
	}
	files := writeSpool(t, dir, o, recs)
	if len(files) != 4 {
		t.Fatalf("segments %v, want 4", files)
	}
	path := filepath.Join(dir, files[1]) // records 3, 4, 5
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := frameSize(&recs[0])
	b[segHdrLen+fs+50] ^= 1 // inside record 4
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	want := append(append([]Record{}, recs[:4]...), recs[6:]...)
	s := checkRecords(t, dir, o, want)
	rep := s.Stats().Recovered
	if len(rep.Cuts) != 1 || rep.Cuts[0].File != files[1] || rep.DroppedRecords != 2 {
		t.Fatalf("report %+v", rep)
	}
	// New records go after the surviving ones.
	if err := s.Append(context.Background(), testRec(50, 1)); err != nil {
		t.Fatal(err)
	}
	got := drainAll(t, s, 0, 0)
	if len(got) != len(want)+1 || got[len(got)-1].Pos.Seq != 13 {
		t.Fatalf("drained %d, last seq %d", len(got), got[len(got)-1].Pos.Seq)
	}
}

func TestRecoverHeaderOnlyAndForeignFiles(t *testing.T) {
	dir := t.TempDir()
	files := writeSpool(t, dir, Options{}, []Record{testRec(1, 10)})
	// A segment torn while being created (half a header) is removed.
	torn := filepath.Join(dir, segName(2))
	if err := os.WriteFile(torn, []byte(segMagic[:3]), 0o640); err != nil {
		t.Fatal(err)
	}
	s := checkRecords(t, dir, Options{}, []Record{testRec(1, 10)})
	if _, err := os.Stat(torn); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("torn header-only segment still there: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A file with a segment's name but another format is not ours to cut.
	if err := os.WriteFile(filepath.Join(dir, segName(9)), []byte("something else entirely"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "not a spool segment") {
		t.Fatalf("Open with a foreign .seg file: %v", err)
	}
	if got := segFiles(t, dir); len(got) != 2 || got[0] != files[0] {
		t.Fatalf("files after the refused Open: %v", got)
	}
}

func TestRecoverBadCheckpointResendsEverything(t *testing.T) {
	dir := t.TempDir()
	o := Options{SegmentBytes: 1024}
	var recs []Record
	for i := range 8 {
		recs = append(recs, testRec(i, 200))
	}
	s := mustOpen(t, dir, o)
	for _, r := range recs {
		if err := s.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	es, _ := s.Peek(2, 0) // within the first segment: it stays
	if err := s.Trim(es[1].Pos); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ckptName), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = checkRecords(t, dir, o, recs) // duplicates, never a loss
	if rep := s.Stats().Recovered; !rep.CheckpointBad || rep.CheckpointSeq != 0 {
		t.Fatalf("report %+v", rep)
	}
}
