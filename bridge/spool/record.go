package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Record is one Kafka record as the spool keeps it. The spool never looks
// inside Key, Value or Headers; a nil Key, Value or header Value comes back
// nil and an empty one comes back empty.
type Record struct {
	Topic   string   // destination topic, at most 65535 bytes
	Key     []byte   // partitioning key; nil means a null key
	Value   []byte   // payload; nil means a null value (tombstone)
	Headers []Header // at most 65535 headers
	Time    int64    // unix milliseconds when the push was received; 0 means "now" at append
}

// Header is one Kafka record header.
type Header struct {
	Key   string // header name, at most 65535 bytes
	Value []byte // header value; nil stays nil
}

// Position identifies one spooled record, for [Spool.Trim]. Only positions
// returned by [Spool.Peek] are meaningful; the zero Position is before every
// record.
type Position struct {
	Seq uint64 // the record's sequence number: unique, increasing, starting at 1

	seg uint64 // base sequence number (file name) of the record's segment
	end int64  // offset just past the record in its segment
}

// Entry is one record returned by [Spool.Peek] with its position. Its byte
// slices belong to the caller (they share one buffer per Peek call, which the
// spool never touches again).
type Entry struct {
	Pos Position // where the record is, for Trim
	Record
}

// On-disk layout constants; see the package documentation.
const (
	segMagic   = "r2kspl\x00\x01" // segment header: magic + format version 1
	segHdrLen  = int64(len(segMagic))
	frameHdr   = 8                     // u32 body length | u32 CRC-32C
	fixedBody  = 8 + 8 + 2 + 4 + 2 + 4 // seq, time, topic len, key len, header count, value len
	nilLen     = math.MaxUint32        // u32 length marking a nil slice
	maxBodyLen = 1 << 30               // hard limit on one record's body, whatever the options
)

// castagnoli is the CRC-32C table; read-only after package initialisation.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameSize returns the encoded size of rec including the frame header, or
// an error wrapping ErrTooLarge when it cannot be encoded.
func frameSize(rec *Record) (int64, error) {
	if len(rec.Topic) > math.MaxUint16 {
		return 0, fmt.Errorf("topic of %d bytes: %w", len(rec.Topic), ErrTooLarge)
	}
	if len(rec.Headers) > math.MaxUint16 {
		return 0, fmt.Errorf("%d headers: %w", len(rec.Headers), ErrTooLarge)
	}
	n := int64(frameHdr+fixedBody) + int64(len(rec.Topic)) + int64(len(rec.Key)) + int64(len(rec.Value))
	for i := range rec.Headers {
		h := &rec.Headers[i]
		if len(h.Key) > math.MaxUint16 {
			return 0, fmt.Errorf("header key of %d bytes: %w", len(h.Key), ErrTooLarge)
		}
		n += 2 + 4 + int64(len(h.Key)) + int64(len(h.Value))
	}
	if n-frameHdr > maxBodyLen {
		return 0, fmt.Errorf("record of %d bytes: %w", n, ErrTooLarge)
	}
	return n, nil
}

// appendFrame appends rec as one frame with sequence number seq and time
// tms; rec must have passed frameSize.
func appendFrame(dst []byte, seq uint64, tms int64, rec *Record) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // length and CRC, patched below
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(tms))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(rec.Topic)))
	dst = append(dst, rec.Topic...)
	dst = appendBytes32(dst, rec.Key)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(rec.Headers)))
	for i := range rec.Headers {
		h := &rec.Headers[i]
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendBytes32(dst, h.Value)
	}
	dst = appendBytes32(dst, rec.Value)
	body := dst[start+frameHdr:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst
}

func appendBytes32(dst, b []byte) []byte {
	if b == nil {
		return binary.LittleEndian.AppendUint32(dst, nilLen)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// errShort reports a frame or body that ends before its declared contents.
var errShort = errors.New("short record")

// frameBodyLen reads a frame header's body length and checks it for
// plausibility.
func frameBodyLen(hdr []byte) (int, error) {
	n := binary.LittleEndian.Uint32(hdr)
	if n < fixedBody || n > maxBodyLen {
		return 0, fmt.Errorf("implausible body length %d", n)
	}
	return int(n), nil
}

// checkFrame verifies a whole frame (header + body) and returns its body.
func checkFrame(frame []byte) ([]byte, error) {
	body := frame[frameHdr:]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(frame[4:]); got != want {
		return nil, fmt.Errorf("CRC mismatch (stored %08x, computed %08x)", want, got)
	}
	return body, nil
}

// decodeBody parses a body whose CRC matched. With rec nil it only checks the
// structure and returns seq and time; otherwise it fills rec with slices of
// body (and a new string for the topic and header keys).
func decodeBody(body []byte, rec *Record) (seq uint64, tms int64, err error) {
	d := decoder{b: body}
	seq = d.u64()
	tms = int64(d.u64())
	topic := d.bytes(int(d.u16()))
	key := d.bytes32()
	nh := int(d.u16())
	if rec != nil {
		rec.Topic = string(topic)
		rec.Key = key
		rec.Time = tms
		rec.Headers = nil
		if nh > 0 && d.err == nil {
			rec.Headers = make([]Header, 0, min(nh, len(d.b)/6+1))
		}
	}
	for i := 0; i < nh && d.err == nil; i++ {
		hk := d.bytes(int(d.u16()))
		hv := d.bytes32()
		if rec != nil && d.err == nil {
			rec.Headers = append(rec.Headers, Header{Key: string(hk), Value: hv})
		}
	}
	val := d.bytes32()
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return 0, 0, d.err
	}
	if rec != nil {
		rec.Value = val
	}
	return seq, tms, nil
}

// decoder reads little-endian fields with bounds checks; the first failure
// sticks in err and later reads return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errShort
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

// bytes returns the next n bytes, never nil (an empty slice for n == 0).
func (d *decoder) bytes(n int) []byte {
	p := d.take(n)
	if p == nil && d.err == nil {
		return []byte{}
	}
	return p
}

// bytes32 reads a u32 length (nilLen for nil) and that many bytes.
func (d *decoder) bytes32() []byte {
	n := d.u32()
	if d.err != nil || n == nilLen {
		return nil
	}
	if int64(n) > int64(len(d.b)) {
		d.err = errShort
		return nil
	}
	return d.bytes(int(n))
}
