package spool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// segScan is what scanning one segment file found.
type segScan struct {
	size     int64  // end of the last good record (file size after a cut)
	count    uint64 // good records
	liveOff  int64  // offset of the first record above the checkpoint, if hasLive
	liveSeq  uint64
	liveTime int64
	hasLive  bool
	cut      *Cut
}

// recover scans the directory and fills segs, head and the recovery report.
// It returns the sequence number for the next appended record.
func (s *Spool) recover() (uint64, error) {
	rep := &s.st.Recovered
	ckpt, bad, err := readCheckpoint(s.dir)
	if err != nil {
		return 0, err
	}
	rep.CheckpointSeq, rep.CheckpointBad = ckpt, bad
	if bad {
		s.log.Warn("spool: checkpoint unreadable, every record on disk will be re-sent (possible duplicates)",
			"dir", s.dir)
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, fmt.Errorf("list: %w", err)
	}
	var bases []uint64
	for _, e := range ents {
		name := e.Name()
		if name == ckptTmp {
			if err := os.Remove(s.path(name)); err != nil {
				return 0, fmt.Errorf("remove stale %s: %w", name, err)
			}
			continue
		}
		num, ok := strings.CutSuffix(name, ".seg")
		if !ok || len(num) != 20 || !e.Type().IsRegular() {
			continue
		}
		base, err := strconv.ParseUint(num, 10, 64)
		if err != nil || base == 0 {
			return 0, fmt.Errorf("segment file %s: name is not a sequence number", name)
		}
		bases = append(bases, base)
	}
	slices.Sort(bases)
	rep.Segments = len(bases)

	next := ckpt + 1
	var prevLast uint64 // last good sequence number of the previous segment with records
	prevName := ""
	changed := false
	for _, base := range bases {
		name := segName(base)
		if prevLast != 0 && base <= prevLast {
			return 0, fmt.Errorf("segment %s overlaps %s (which ends at sequence %d); move one of them away", name, prevName, prevLast)
		}
		sc, err := scanSegment(s.path(name), base, ckpt)
		if err != nil {
			return 0, fmt.Errorf("segment %s: %w", name, err)
		}
		if sc.cut != nil {
			changed = true
			rep.Cuts = append(rep.Cuts, *sc.cut)
			rep.TruncatedBytes += sc.cut.Bytes
			rep.DroppedRecords += sc.cut.Dropped
			s.log.Warn("spool: cut a torn or corrupt segment tail (records in it were lost)",
				"dir", s.dir, "file", name, "offset", sc.cut.Offset, "bytes", sc.cut.Bytes,
				"dropped_records", sc.cut.Dropped, "reason", sc.cut.Reason)
		}
		if sc.count > 0 {
			last := base + sc.count - 1
			prevLast, prevName = last, name
			next = max(next, last+1)
		}
		if !sc.hasLive {
			// Empty, or every record already trimmed: the file has no use.
			if err := os.Remove(s.path(name)); err != nil {
				return 0, fmt.Errorf("remove drained segment %s: %w", name, err)
			}
			changed = true
			continue
		}
		sg := &segment{base: base, path: s.path(name), size: sc.size, count: sc.count}
		if len(s.segs) == 0 {
			s.headSeq, s.headOff, s.headTime = sc.liveSeq, sc.liveOff, sc.liveTime
		}
		s.segs = append(s.segs, sg)
	}
	if changed {
		if err := syncDir(s.dir); err != nil {
			return 0, err
		}
	}
	s.recountLocked()
	rep.Records, rep.Bytes = s.records, s.bytes
	if rep.Segments > 0 || bad {
		s.log.Info("spool: opened", "dir", s.dir, "records", s.records, "bytes", s.bytes,
			"segments", len(s.segs), "checkpoint_seq", ckpt, "truncated_bytes", rep.TruncatedBytes,
			"dropped_records", rep.DroppedRecords)
	}
	return next, nil
}

// scanSegment verifies every record of one segment file, truncates the file
// at the first bad one and reports where the records above the checkpoint
// start.
func scanSegment(path string, base, ckpt uint64) (segScan, error) {
	var sc segScan
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return sc, err
	}
	defer f.Close() // read-write handle; Sync below made any change durable
	fi, err := f.Stat()
	if err != nil {
		return sc, err
	}
	fsize := fi.Size()
	if fsize < segHdrLen {
		// Torn while being created: holds no record.
		sc.cut = &Cut{File: fi.Name(), Offset: 0, Bytes: fsize, Reason: "segment header torn"}
		return sc, nil
	}
	var hdr [segHdrLen]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return sc, err
	}
	if string(hdr[:]) != segMagic {
		return sc, fmt.Errorf("not a spool segment of format version 1 (header %q); move it away", hdr[:])
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, segHdrLen, fsize-segHdrLen), 1<<20)
	off := segHdrLen
	var fh [frameHdr]byte
	var frame []byte
	reason := ""
	for off < fsize {
		if fsize-off < frameHdr {
			reason = fmt.Sprintf("torn record header (%d of %d bytes)", fsize-off, frameHdr)
			break
		}
		if _, err := io.ReadFull(r, fh[:]); err != nil {
			return sc, err
		}
		n, err := frameBodyLen(fh[:])
		if err != nil {
			reason = err.Error()
			break
		}
		if int64(frameHdr+n) > fsize-off {
			reason = fmt.Sprintf("torn record (%d of %d bytes)", fsize-off, frameHdr+n)
			break
		}
		frame = slices.Grow(frame[:0], frameHdr+n)[:frameHdr+n]
		copy(frame, fh[:])
		if _, err := io.ReadFull(r, frame[frameHdr:]); err != nil {
			return sc, err
		}
		body, err := checkFrame(frame)
		if err != nil {
			reason = err.Error()
			break
		}
		seq, tms, err := decodeBody(body, nil)
		if err != nil {
			reason = "malformed record: " + err.Error()
			break
		}
		if want := base + sc.count; seq != want {
			reason = fmt.Sprintf("sequence %d where %d was due", seq, want)
			break
		}
		if seq > ckpt && !sc.hasLive {
			sc.hasLive, sc.liveOff, sc.liveSeq, sc.liveTime = true, off, seq, tms
		}
		sc.count++
		off += int64(frameHdr + n)
	}
	sc.size = off
	if reason == "" {
		return sc, nil
	}
	dropped, err := countDropped(f, off, fsize)
	if err != nil {
		return sc, err
	}
	sc.cut = &Cut{File: fi.Name(), Offset: off, Bytes: fsize - off, Dropped: dropped, Reason: reason}
	if err := f.Truncate(off); err != nil {
		return sc, fmt.Errorf("truncate at %d: %w", off, err)
	}
	if err := f.Sync(); err != nil {
		return sc, fmt.Errorf("truncate at %d: %w", off, err)
	}
	return sc, nil
}

// countDropped estimates how many records the cut at off loses: the bad one
// and, if its length field is plausible, every intact record that follows it.
func countDropped(f *os.File, off, fsize int64) (int64, error) {
	rest := make([]byte, fsize-off)
	if _, err := f.ReadAt(rest, off); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read cut tail: %w", err)
	}
	dropped := int64(1)
	n, err := 0, error(nil)
	if len(rest) >= frameHdr {
		n, err = frameBodyLen(rest)
	}
	if len(rest) < frameHdr || err != nil || frameHdr+n > len(rest) {
		return dropped, nil
	}
	for p := frameHdr + n; p+frameHdr <= len(rest); {
		n, err := frameBodyLen(rest[p:])
		if err != nil || p+frameHdr+n > len(rest) {
			break
		}
		if _, err := checkFrame(rest[p : p+frameHdr+n]); err != nil {
			break
		}
		dropped++
		p += frameHdr + n
	}
	return dropped, nil
}
