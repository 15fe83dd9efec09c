package spool

import (
	"encoding/binary"
	"fmt"
	"os"
	"slices"
)

// Peek defaults for zero limits.
const (
	DefaultPeekRecords = 1024    // records per Peek when maxRecords is 0
	DefaultPeekBytes   = 1 << 20 // encoded bytes per Peek when maxBytes is 0
	maxPeekChunk       = 8 << 20 // largest single read
)

// span is the part of one segment a Peek may read.
type span struct {
	sg       *segment
	rf       *os.File
	from, to int64
	seq      uint64 // sequence number of the record at from
}

// Peek returns the oldest untrimmed durable records, in order, without
// removing them: at most maxRecords records (0: DefaultPeekRecords) of at most
// maxBytes encoded bytes (0: DefaultPeekBytes), but always at least one
// record when the spool is not empty. It returns an empty slice when the
// spool is empty. Calling Peek again before Trim returns the same records
// again. Each record's CRC is checked again; a mismatch returns an error
// wrapping ErrCorrupt.
func (s *Spool) Peek(maxRecords int, maxBytes int64) ([]Entry, error) {
	if maxRecords <= 0 {
		maxRecords = DefaultPeekRecords
	}
	if maxBytes <= 0 {
		maxBytes = DefaultPeekBytes
	}
	s.readMu.Lock()
	defer s.readMu.Unlock()
	spans, err := s.spans()
	if err != nil {
		return nil, fmt.Errorf("spool: peek: %w", err)
	}
	var out []Entry
	var used int64
	for _, sp := range spans {
		off, seq := sp.from, sp.seq
		for off < sp.to && len(out) < maxRecords {
			want := min(sp.to-off, maxBytes-used, maxPeekChunk)
			want = max(want, min(frameHdr, sp.to-off))
			chunk := make([]byte, want)
			if _, err := sp.rf.ReadAt(chunk, off); err != nil {
				return nil, fmt.Errorf("spool: peek: read %s at %d: %w", sp.sg.path, off, err)
			}
			p := 0
			for p+frameHdr <= len(chunk) && len(out) < maxRecords {
				n, err := frameBodyLen(chunk[p:])
				if err != nil {
					return nil, s.corrupt(sp.sg, off+int64(p), err)
				}
				fl := frameHdr + n
				if off+int64(p+fl) > sp.to {
					return nil, s.corrupt(sp.sg, off+int64(p), fmt.Errorf("record runs past the durable end %d", sp.to))
				}
				if p+fl > len(chunk) {
					if p > 0 || len(out) > 0 {
						break // read again from here, or stop for the byte limit below
					}
					// The first record alone is larger than maxBytes: return it anyway.
					big := make([]byte, fl)
					if _, err := sp.rf.ReadAt(big, off); err != nil {
						return nil, fmt.Errorf("spool: peek: read %s at %d: %w", sp.sg.path, off, err)
					}
					chunk, p = big, 0
				}
				e, err := decodeEntry(chunk[p:p+fl], sp.sg.base, off+int64(p+fl), seq)
				if err != nil {
					return nil, s.corrupt(sp.sg, off+int64(p), err)
				}
				out = append(out, e)
				p += fl
				used += int64(fl)
				seq++
			}
			off += int64(p)
			if p == 0 || used >= maxBytes {
				return out, nil // the next record does not fit in maxBytes
			}
		}
		if len(out) >= maxRecords {
			break
		}
	}
	return out, nil
}

// spans snapshots what is readable, opening read handles as needed.
func (s *Spool) spans() ([]span, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.records == 0 {
		return nil, nil
	}
	out := make([]span, 0, len(s.segs))
	for i, sg := range s.segs {
		sp := span{sg: sg, from: segHdrLen, to: sg.size, seq: sg.base}
		if i == 0 {
			sp.from, sp.seq = s.headOff, s.headSeq
		}
		if sp.from >= sp.to {
			continue
		}
		if err := s.openReadLocked(sg); err != nil {
			return nil, err
		}
		sp.rf = sg.rf
		out = append(out, sp)
	}
	return out, nil
}

func (s *Spool) openReadLocked(sg *segment) error {
	if sg.rf != nil {
		return nil
	}
	f, err := os.Open(sg.path)
	if err != nil {
		return err
	}
	sg.rf = f
	return nil
}

func (s *Spool) corrupt(sg *segment, off int64, err error) error {
	return fmt.Errorf("spool: peek: %s at %d: %v: %w (reopen the spool to cut it)", sg.path, off, err, ErrCorrupt)
}

// decodeEntry checks and decodes one frame read by Peek.
func decodeEntry(frame []byte, segBase uint64, end int64, wantSeq uint64) (Entry, error) {
	body, err := checkFrame(frame)
	if err != nil {
		return Entry{}, err
	}
	var e Entry
	seq, _, err := decodeBody(body, &e.Record)
	if err != nil {
		return Entry{}, err
	}
	if seq != wantSeq {
		return Entry{}, fmt.Errorf("sequence %d where %d was due", seq, wantSeq)
	}
	e.Pos = Position{Seq: seq, seg: segBase, end: end}
	return e, nil
}

// Trim drops every record up to and including upTo, a Position from Peek,
// once Kafka has acked them. It persists the new trim point before it
// returns and deletes segment files that no longer hold an untrimmed
// record. Trimming a position that is already trimmed does nothing. After a
// crash, records acked but not yet trimmed are sent again: duplicates are
// possible, losses are not.
func (s *Spool) Trim(upTo Position) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if upTo.Seq < s.headSeq || s.records == 0 {
		s.mu.Unlock()
		return nil
	}
	i := slices.IndexFunc(s.segs, func(sg *segment) bool { return sg.base == upTo.seg })
	if i < 0 || upTo.Seq >= s.segs[i].base+s.segs[i].count || upTo.end > s.segs[i].size || upTo.end <= segHdrLen {
		s.mu.Unlock()
		return fmt.Errorf("spool: trim: position %d is not a record of this spool", upTo.Seq)
	}
	s.mu.Unlock()

	if err := writeCheckpoint(s.dir, upTo.Seq); err != nil {
		return fmt.Errorf("spool: trim: %w", err)
	}

	s.mu.Lock()
	// Only the writer ran meanwhile; it appends, and removes segments only
	// while the spool is empty, which it was not.
	i = slices.IndexFunc(s.segs, func(sg *segment) bool { return sg.base == upTo.seg })
	before := s.records
	s.headSeq, s.headOff = upTo.Seq+1, upTo.end
	for i < len(s.segs)-1 && s.headOff >= s.segs[i].size {
		i++
		s.headSeq, s.headOff = s.segs[i].base, segHdrLen
	}
	dead := slices.Clone(s.segs[:i])
	s.segs = slices.Delete(s.segs, 0, i)
	s.recountLocked()
	s.st.Trimmed += uint64(before - s.records)
	var err error
	if s.records > 0 {
		err = s.readHeadTimeLocked()
	}
	s.mu.Unlock()
	removeSegments(s, dead)
	if err != nil {
		return fmt.Errorf("spool: trim: %w", err)
	}
	return nil
}

// readHeadTimeLocked reads the Time of the record at the head, for
// OldestAge.
func (s *Spool) readHeadTimeLocked() error {
	sg := s.segs[0]
	if err := s.openReadLocked(sg); err != nil {
		return err
	}
	var b [frameHdr + 16]byte
	if _, err := sg.rf.ReadAt(b[:], s.headOff); err != nil {
		return fmt.Errorf("read %s at %d: %w", sg.path, s.headOff, err)
	}
	s.headTime = int64(binary.LittleEndian.Uint64(b[frameHdr+8:]))
	return nil
}
