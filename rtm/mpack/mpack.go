// Package mpack appends msgpack values to byte slices, in the two integer
// styles the RTM protocol meets: the official Go SDK's widths (spec §3.2),
// which the client and the Go-style simulator send byte for byte, and the
// C++ msgpack-c rule (smallest format, unsigned for non-negative values),
// which a C++ gateway sends and the bridge's msgpack records use.
//
// Every function appends to dst and returns the extended slice; none
// allocates beyond growing dst. Strings, bins, arrays and maps always take
// the smallest format that holds their length, whichever integer style is
// used.
package mpack

import (
	"encoding/binary"
	"math"
)

// AppendMapHeader appends a map header for n entries (fixmap, map16 or
// map32).
func AppendMapHeader(dst []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(dst, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdf), uint32(n))
}

// AppendArrayHeader appends an array header for n items (fixarray, array16
// or array32).
func AppendArrayHeader(dst []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(dst, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdd), uint32(n))
}

// AppendStrHeader appends a str header for n bytes (fixstr, str8, str16 or
// str32).
func AppendStrHeader(dst []byte, n int) []byte {
	switch {
	case n <= 31:
		return append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
}

// AppendStr appends s, a string or a byte slice, as a msgpack str.
func AppendStr[T string | []byte](dst []byte, s T) []byte {
	return append(AppendStrHeader(dst, len(s)), s...)
}

// AppendBin appends b as a msgpack bin (bin8, bin16 or bin32).
func AppendBin(dst []byte, b []byte) []byte {
	switch n := len(b); {
	case n <= math.MaxUint8:
		dst = append(dst, 0xc4, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xc5), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xc6), uint32(n))
	}
	return append(dst, b...)
}

// AppendBool appends c3 (true) or c2 (false).
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 0xc3)
	}
	return append(dst, 0xc2)
}

// AppendNil appends nil (c0).
func AppendNil(dst []byte) []byte { return append(dst, 0xc0) }

// AppendIntGo appends v with the official Go SDK's width rule (spec §3.2):
// fixint for -32..127; int16 for 128..32767 (never uint8 or int8), then
// int32 and int64 for larger non-negative values; the smallest of int8,
// int16, int32 and int64 for the other negative values. It never writes an
// unsigned format.
func AppendIntGo(dst []byte, v int64) []byte {
	switch {
	case v >= -32 && v <= 127:
		return append(dst, byte(v))
	case v >= 0 && v <= math.MaxInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(v))
	case v >= 0 && v <= math.MaxInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(v))
	case v >= 0:
		return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(v))
	}
	return appendNegative(dst, v)
}

// AppendIntCompact appends v as C++ msgpack-c does: fixint for -32..127,
// the smallest of uint8, uint16, uint32 and uint64 for larger non-negative
// values, the smallest of int8, int16, int32 and int64 for the other
// negative values.
func AppendIntCompact(dst []byte, v int64) []byte {
	switch {
	case v >= -32 && v <= 127:
		return append(dst, byte(v))
	case v < 0:
		return appendNegative(dst, v)
	case v <= math.MaxUint8:
		return append(dst, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), uint64(v))
}

// appendNegative appends v < -32 in the smallest signed format; both integer
// styles agree on it.
func appendNegative(dst []byte, v int64) []byte {
	switch {
	case v >= math.MinInt8:
		return append(dst, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(v))
}

// AppendUint64 appends v as a uint64 (cf and 8 bytes, whatever its size);
// it is for values above the int64 range.
func AppendUint64(dst []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), v)
}

// AppendFloat64 appends f as a float64 (cb and 8 bytes).
func AppendFloat64(dst []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, 0xcb), math.Float64bits(f))
}

// AppendStrOrBin appends b as a msgpack bin when asBin, else as a str: how
// RTM sends a message body that may be binary.
func AppendStrOrBin(dst []byte, b []byte, asBin bool) []byte {
	if asBin {
		return AppendBin(dst, b)
	}
	return AppendStr(dst, b)
}
