package mpack

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// TestInts checks every integer format boundary in both styles: the format
// byte, the length, and that vmihailenco/msgpack decodes the value back.
func TestInts(t *testing.T) {
	cases := []struct {
		v             int64
		goFmt, cppFmt byte // first byte; for fixints the value itself
		goLen, cppLen int
	}{
		{0, 0x00, 0x00, 1, 1},
		{127, 0x7f, 0x7f, 1, 1},
		{128, 0xd1, 0xcc, 3, 2},
		{255, 0xd1, 0xcc, 3, 2},
		{256, 0xd1, 0xcd, 3, 3},
		{32767, 0xd1, 0xcd, 3, 3},
		{32768, 0xd2, 0xcd, 5, 3},
		{65535, 0xd2, 0xcd, 5, 3},
		{65536, 0xd2, 0xce, 5, 5},
		{math.MaxInt32, 0xd2, 0xce, 5, 5},
		{math.MaxInt32 + 1, 0xd3, 0xce, 9, 5},
		{math.MaxUint32, 0xd3, 0xce, 9, 5},
		{math.MaxUint32 + 1, 0xd3, 0xcf, 9, 9},
		{math.MaxInt64, 0xd3, 0xcf, 9, 9},
		{-1, 0xff, 0xff, 1, 1},
		{-32, 0xe0, 0xe0, 1, 1},
		{-33, 0xd0, 0xd0, 2, 2},
		{-128, 0xd0, 0xd0, 2, 2},
		{-129, 0xd1, 0xd1, 3, 3},
		{math.MinInt16, 0xd1, 0xd1, 3, 3},
		{math.MinInt16 - 1, 0xd2, 0xd2, 5, 5},
		{math.MinInt32, 0xd2, 0xd2, 5, 5},
		{math.MinInt32 - 1, 0xd3, 0xd3, 9, 9},
		{math.MinInt64, 0xd3, 0xd3, 9, 9},
	}
	for _, c := range cases {
		for _, style := range []struct {
			name    string
			append  func([]byte, int64) []byte
			fmt     byte
			wantLen int
		}{
			{"AppendIntGo", AppendIntGo, c.goFmt, c.goLen},
			{"AppendIntCompact", AppendIntCompact, c.cppFmt, c.cppLen},
		} {
			b := style.append([]byte{0xee}, c.v)[1:] // appends after what dst holds
			if len(b) != style.wantLen || b[0] != style.fmt {
				t.Errorf("%s(%d) = % x, want format %#02x and %d bytes", style.name, c.v, b, style.fmt, style.wantLen)
			}
			var got int64
			if err := msgpack.Unmarshal(b, &got); err != nil || got != c.v {
				t.Errorf("%s(%d) = % x decodes to %d, %v", style.name, c.v, b, got, err)
			}
		}
	}
}

// TestStrBin checks the str and bin length boundaries, for strings and byte
// slices alike.
func TestStrBin(t *testing.T) {
	for _, c := range []struct {
		n      int
		format byte
		head   int
	}{{0, 0xa0, 1}, {31, 0xbf, 1}, {32, 0xd9, 2}, {255, 0xd9, 2}, {256, 0xda, 3}, {65535, 0xda, 3}, {65536, 0xdb, 5}} {
		s := strings.Repeat("s", c.n)
		for name, b := range map[string][]byte{"string": AppendStr(nil, s), "[]byte": AppendStr(nil, []byte(s))} {
			if b[0] != c.format || len(b) != c.head+c.n {
				t.Errorf("AppendStr(%s of %d) starts % x, %d bytes; want %#02x, %d bytes", name, c.n, b[:min(len(b), 5)], len(b), c.format, c.head+c.n)
			}
			var got string
			if err := msgpack.Unmarshal(b, &got); err != nil || got != s {
				t.Errorf("AppendStr(%s of %d) decodes to %d bytes, %v", name, c.n, len(got), err)
			}
		}
		if h := AppendStrHeader(nil, c.n); !bytes.Equal(h, AppendStr(nil, s)[:c.head]) {
			t.Errorf("AppendStrHeader(%d) = % x", c.n, h)
		}
	}
	for _, c := range []struct {
		n      int
		format byte
		head   int
	}{{0, 0xc4, 2}, {255, 0xc4, 2}, {256, 0xc5, 3}, {65535, 0xc5, 3}, {65536, 0xc6, 5}} {
		in := bytes.Repeat([]byte{0xb1}, c.n)
		b := AppendBin(nil, in)
		if b[0] != c.format || len(b) != c.head+c.n {
			t.Errorf("AppendBin(%d) starts % x, %d bytes; want %#02x, %d bytes", c.n, b[:min(len(b), 5)], len(b), c.format, c.head+c.n)
		}
		var got []byte
		if err := msgpack.Unmarshal(b, &got); err != nil || !bytes.Equal(got, in) {
			t.Errorf("AppendBin(%d) decodes to %d bytes, %v", c.n, len(got), err)
		}
	}
}

// TestHeaders checks the map and array header boundaries by decoding whole
// maps and arrays.
func TestHeaders(t *testing.T) {
	for _, c := range []struct {
		n                int
		mapFmt, arrayFmt byte
	}{{0, 0x80, 0x90}, {15, 0x8f, 0x9f}, {16, 0xde, 0xdc}, {65535, 0xde, 0xdc}, {65536, 0xdf, 0xdd}} {
		m := AppendMapHeader(nil, c.n)
		a := AppendArrayHeader(nil, c.n)
		if m[0] != c.mapFmt || a[0] != c.arrayFmt {
			t.Errorf("headers for %d: map % x, array % x; want %#02x, %#02x", c.n, m, a, c.mapFmt, c.arrayFmt)
		}
		for i := range c.n {
			m = AppendIntCompact(AppendIntGo(m, int64(i)), int64(i))
			a = AppendIntGo(a, int64(i))
		}
		var gotM map[int64]int64
		if err := msgpack.Unmarshal(m, &gotM); err != nil || len(gotM) != c.n || (c.n > 0 && gotM[int64(c.n-1)] != int64(c.n-1)) {
			t.Errorf("map of %d decodes to %d entries, %v", c.n, len(gotM), err)
		}
		var gotA []int64
		if err := msgpack.Unmarshal(a, &gotA); err != nil || len(gotA) != c.n || (c.n > 0 && gotA[c.n-1] != int64(c.n-1)) {
			t.Errorf("array of %d decodes to %d items, %v", c.n, len(gotA), err)
		}
	}
}

// TestScalars checks nil, bool, uint64 and float64.
func TestScalars(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		want any
		fmt  byte
	}{
		{"nil", AppendNil(nil), nil, 0xc0},
		{"true", AppendBool(nil, true), true, 0xc3},
		{"false", AppendBool(nil, false), false, 0xc2},
		{"uint64 max", AppendUint64(nil, math.MaxUint64), uint64(math.MaxUint64), 0xcf},
		{"uint64 1", AppendUint64(nil, 1), uint64(1), 0xcf},
		{"float64", AppendFloat64(nil, -1.5e300), -1.5e300, 0xcb},
	} {
		if c.b[0] != c.fmt {
			t.Errorf("%s = % x, want format %#02x", c.name, c.b, c.fmt)
		}
		var got any
		if err := msgpack.Unmarshal(c.b, &got); err != nil || got != c.want {
			t.Errorf("%s = % x decodes to %#v, %v; want %#v", c.name, c.b, got, err, c.want)
		}
	}
}

// TestNoAllocs checks that appending into a slice with room allocates
// nothing, string and []byte alike.
func TestNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	s, b := "attrs", []byte("payload")
	if n := testing.AllocsPerRun(100, func() {
		d := AppendMapHeader(buf[:0], 3)
		d = AppendIntGo(AppendStr(d, s), 1<<40)
		d = AppendIntCompact(AppendStr(d, b), -1<<40)
		_ = AppendBool(AppendBin(d, b), true)
	}); n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}
