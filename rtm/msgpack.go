package rtm

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

// This file holds the package's own msgpack decoder: a zero-allocation
// scanner over a payload held in memory (msgReader). Encoding goes through
// package mpack, integers with mpack.AppendIntGo (spec §3.2, the official Go
// SDK's widths), so that what we send is byte-equal to the golden vectors.

// maxDepth bounds the nesting of arrays and maps that skip will descend
// into; deeper payloads are rejected rather than risking the stack.
const maxDepth = 32

// errTruncated reports a value that runs past the end of the payload.
var errTruncated = errors.New("truncated payload")

// errTooDeep reports arrays or maps nested deeper than maxDepth.
var errTooDeep = errors.New("values nested too deeply")

// errIntOverflow reports a uint64 above the int64 range.
var errIntOverflow = errors.New("integer overflows int64")

// errNotIntegral reports a float given for an integer field that is not a
// whole number in the int64 range.
var errNotIntegral = errors.New("float value is not an integer")

// typeError says which msgpack family was found where another was wanted.
type typeError struct {
	want string
	got  byte // the format byte found
}

func (e *typeError) Error() string { return "want " + e.want + ", got " + formatName(e.got) }

// formatName names the family of a msgpack format byte for error messages.
func formatName(c byte) string {
	switch {
	case c <= 0x7f || c >= 0xe0:
		return "integer"
	case c <= 0x8f:
		return "map"
	case c <= 0x9f:
		return "array"
	case c <= 0xbf:
		return "str"
	}
	switch c {
	case 0xc0:
		return "nil"
	case 0xc2, 0xc3:
		return "bool"
	case 0xc4, 0xc5, 0xc6:
		return "bin"
	case 0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return "ext"
	case 0xca, 0xcb:
		return "float"
	case 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3:
		return "integer"
	case 0xd9, 0xda, 0xdb:
		return "str"
	case 0xdc, 0xdd:
		return "array"
	case 0xde, 0xdf:
		return "map"
	}
	return "invalid byte 0xc1"
}

// msgReader scans msgpack values from b starting at off. It never copies:
// strings and bins are returned as sub-slices of b. Every length is checked
// against the bytes that remain before it is used.
type msgReader struct {
	b   []byte
	off int
}

// left is the number of unread bytes.
func (r *msgReader) left() int { return len(r.b) - r.off }

// peek returns the next format byte without consuming it.
func (r *msgReader) peek() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	return r.b[r.off], nil
}

// take consumes n bytes and returns them.
func (r *msgReader) take(n int) ([]byte, error) {
	if n < 0 || n > r.left() {
		return nil, errTruncated
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s, nil
}

// uintN reads an n-byte big-endian unsigned integer (n = 1, 2, 4 or 8).
func (r *msgReader) uintN(n int) (uint64, error) {
	s, err := r.take(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(s[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(s)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(s)), nil
	}
	return binary.BigEndian.Uint64(s), nil
}

// lengthN reads an n-byte length and checks it against the bytes that
// remain, each element needing at least minElem bytes.
func (r *msgReader) lengthN(n, minElem int) (int, error) {
	v, err := r.uintN(n)
	if err != nil {
		return 0, err
	}
	if v > uint64(r.left())/uint64(minElem) {
		return 0, errTruncated
	}
	return int(v), nil
}

// mapHeader reads a map header (fixmap, map16, map32) and returns the number
// of entries.
func (r *msgReader) mapHeader() (int, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	switch {
	case c&0xf0 == 0x80:
		r.off++
		n := int(c & 0x0f)
		if n*2 > r.left() {
			return 0, errTruncated
		}
		return n, nil
	case c == 0xde:
		r.off++
		return r.lengthN(2, 2)
	case c == 0xdf:
		r.off++
		return r.lengthN(4, 2)
	}
	return 0, &typeError{want: "map", got: c}
}

// arrayHeader reads an array header (fixarray, array16, array32) and returns
// the number of items.
func (r *msgReader) arrayHeader() (int, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	switch {
	case c&0xf0 == 0x90:
		r.off++
		n := int(c & 0x0f)
		if n > r.left() {
			return 0, errTruncated
		}
		return n, nil
	case c == 0xdc:
		r.off++
		return r.lengthN(2, 1)
	case c == 0xdd:
		r.off++
		return r.lengthN(4, 1)
	}
	return 0, &typeError{want: "array", got: c}
}

// bytes reads a str or bin value and returns it aliased, with bin true when
// it was a msgpack bin.
func (r *msgReader) bytes() (s []byte, bin bool, err error) {
	c, err := r.peek()
	if err != nil {
		return nil, false, err
	}
	var n int
	switch {
	case c&0xe0 == 0xa0:
		r.off++
		n = int(c & 0x1f)
	case c == 0xd9 || c == 0xc4:
		r.off++
		n, err = r.lengthN(1, 1)
	case c == 0xda || c == 0xc5:
		r.off++
		n, err = r.lengthN(2, 1)
	case c == 0xdb || c == 0xc6:
		r.off++
		n, err = r.lengthN(4, 1)
	default:
		return nil, false, &typeError{want: "str or bin", got: c}
	}
	if err != nil {
		return nil, false, err
	}
	s, err = r.take(n)
	return s, c >= 0xc4 && c <= 0xc6, err
}

// str reads a str value (not bin), aliased; it is used for map keys.
func (r *msgReader) str() ([]byte, error) {
	c, err := r.peek()
	if err != nil {
		return nil, err
	}
	if c&0xe0 != 0xa0 && (c < 0xd9 || c > 0xdb) {
		return nil, &typeError{want: "str", got: c}
	}
	s, _, err := r.bytes()
	return s, err
}

// int reads an integer in any msgpack integer format. A uint64 above
// math.MaxInt64 is an error. A float32/float64 holding a whole number in the
// int64 range is accepted too, as the official Go SDK does.
func (r *msgReader) int() (int64, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	if c <= 0x7f {
		r.off++
		return int64(c), nil
	}
	if c >= 0xe0 {
		r.off++
		return int64(int8(c)), nil
	}
	var v uint64
	switch c {
	case 0xcc, 0xd0:
		r.off++
		v, err = r.uintN(1)
	case 0xcd, 0xd1:
		r.off++
		v, err = r.uintN(2)
	case 0xce, 0xd2:
		r.off++
		v, err = r.uintN(4)
	case 0xcf, 0xd3:
		r.off++
		v, err = r.uintN(8)
	case 0xca:
		r.off++
		v, err = r.uintN(4)
		if err != nil {
			return 0, err
		}
		return floatToInt(float64(math.Float32frombits(uint32(v))))
	case 0xcb:
		r.off++
		v, err = r.uintN(8)
		if err != nil {
			return 0, err
		}
		return floatToInt(math.Float64frombits(v))
	default:
		return 0, &typeError{want: "integer", got: c}
	}
	if err != nil {
		return 0, err
	}
	switch c {
	case 0xd0:
		return int64(int8(v)), nil
	case 0xd1:
		return int64(int16(v)), nil
	case 0xd2:
		return int64(int32(v)), nil
	case 0xd3:
		return int64(v), nil
	case 0xcf:
		if v > math.MaxInt64 {
			return 0, errIntOverflow
		}
	}
	return int64(v), nil
}

// floatToInt converts a float that holds a whole number in the int64 range.
func floatToInt(f float64) (int64, error) {
	if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, errNotIntegral
	}
	return int64(f), nil
}

// bool reads a boolean.
func (r *msgReader) bool() (bool, error) {
	c, err := r.peek()
	if err != nil {
		return false, err
	}
	switch c {
	case 0xc2:
		r.off++
		return false, nil
	case 0xc3:
		r.off++
		return true, nil
	}
	return false, &typeError{want: "bool", got: c}
}

// skip consumes one value of any type, nested values included.
func (r *msgReader) skip() error { return r.skipDepth(0) }

func (r *msgReader) skipDepth(depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	c, err := r.peek()
	if err != nil {
		return err
	}
	r.off++
	var n int
	switch {
	case c <= 0x7f || c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		return nil
	case c&0xf0 == 0x80:
		return r.skipN(int(c&0x0f)*2, depth)
	case c&0xf0 == 0x90:
		return r.skipN(int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		_, err = r.take(int(c & 0x1f))
		return err
	}
	switch c {
	case 0xcc, 0xd0:
		_, err = r.take(1)
	case 0xcd, 0xd1:
		_, err = r.take(2)
	case 0xce, 0xd2, 0xca:
		_, err = r.take(4)
	case 0xcf, 0xd3, 0xcb:
		_, err = r.take(8)
	case 0xd4:
		_, err = r.take(2)
	case 0xd5:
		_, err = r.take(3)
	case 0xd6:
		_, err = r.take(5)
	case 0xd7:
		_, err = r.take(9)
	case 0xd8:
		_, err = r.take(17)
	case 0xc4, 0xd9:
		if n, err = r.lengthN(1, 1); err == nil {
			_, err = r.take(n)
		}
	case 0xc5, 0xda:
		if n, err = r.lengthN(2, 1); err == nil {
			_, err = r.take(n)
		}
	case 0xc6, 0xdb:
		if n, err = r.lengthN(4, 1); err == nil {
			_, err = r.take(n)
		}
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32: length, type byte, data
		if n, err = r.lengthN(1<<(c-0xc7), 1); err == nil {
			_, err = r.take(n + 1)
		}
	case 0xdc:
		if n, err = r.lengthN(2, 1); err == nil {
			err = r.skipN(n, depth)
		}
	case 0xdd:
		if n, err = r.lengthN(4, 1); err == nil {
			err = r.skipN(n, depth)
		}
	case 0xde:
		if n, err = r.lengthN(2, 2); err == nil {
			err = r.skipN(2*n, depth)
		}
	case 0xdf:
		if n, err = r.lengthN(4, 2); err == nil {
			err = r.skipN(2*n, depth)
		}
	default: // 0xc1 is never used
		r.off--
		return &typeError{want: "a msgpack value", got: c}
	}
	return err
}

func (r *msgReader) skipN(n, depth int) error {
	if n > r.left() {
		return errTruncated
	}
	for range n {
		if err := r.skipDepth(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// appendInts appends an array of integers.
func appendInts(dst []byte, vs []int64) []byte {
	dst = mpack.AppendArrayHeader(dst, len(vs))
	for _, v := range vs {
		dst = mpack.AppendIntGo(dst, v)
	}
	return dst
}

// appendStrs appends an array of strings.
func appendStrs(dst []byte, vs []string) []byte {
	dst = mpack.AppendArrayHeader(dst, len(vs))
	for _, v := range vs {
		dst = mpack.AppendStr(dst, v)
	}
	return dst
}
