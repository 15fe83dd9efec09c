package bridge

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// recAppendJSONValidSlow is the byte-by-byte reference the word-at-a-time
// scan must agree with.
func recAppendJSONValidSlow(dst, b []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i, c := range b {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, b[start:i]...)
		dst = recAppendEscape(dst, c)
		start = i + 1
	}
	dst = append(dst, b[start:]...)
	return append(dst, '"')
}

// TestRecAppendJSONValidWordScan: the eight-bytes-at-a-time scan writes
// exactly what the byte-by-byte one writes, for random valid UTF-8 mixing
// ASCII, control characters, quotes, backslashes and multi-byte runes at
// every alignment, and the result decodes back to the input.
func TestRecAppendJSONValidWordScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	alphabet := []string{"a", "Z", " ", "~", "\"", "\\", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "€", "𝄞", "ü"}
	for n := 0; n < 3000; n++ {
		var b bytes.Buffer
		for l := rng.IntN(40); l > 0; l-- {
			if rng.IntN(3) == 0 {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			} else {
				b.WriteString("abcdefgh"[:1+rng.IntN(8)])
			}
		}
		in := b.Bytes()
		if !utf8.Valid(in) {
			t.Fatalf("test input not UTF-8: %q", in)
		}
		got, want := recAppendJSONValid(nil, in), recAppendJSONValidSlow(nil, in)
		if !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != string(in) {
			t.Fatalf("%q: %s decodes to %q, %v", in, got, back, err)
		}
	}
}

func TestRecWordNeedsEscape(t *testing.T) {
	for _, c := range []struct {
		w    string
		want bool
	}{
		{"abcdefgh", false}, {"héllo wö"[:8], false}, {"\xff\xfe\x80\x81\x90\xa0\xc3\xa9", false},
		{"abc\"defg", true}, {"abcdefg\\", true}, {"\nbcdefgh", true}, {"abcd\x1fefg", true}, {"abc\x00defg"[:8], true},
	} {
		w := uint64(0)
		for i := 7; i >= 0; i-- {
			w = w<<8 | uint64(c.w[i])
		}
		if got := recWordNeedsEscape(w); got != c.want {
			t.Errorf("%q: %v, want %v", c.w, got, c.want)
		}
	}
}

// BenchmarkJSONBodyScan compares the word-at-a-time scan with the
// byte-by-byte reference on 1 KiB bodies: ordinary chat text (a few
// escapes) and escape-dense text.
func BenchmarkJSONBodyScan(b *testing.B) {
	plain := bytes.Repeat([]byte("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do é€ eiusmod. "), 14)[:1024]
	plain = bytes.ToValidUTF8(plain, []byte("x"))
	dense := bytes.Repeat([]byte("héllo, wörld \"quoted\"\n"), 47)[:1024]
	dense = bytes.ToValidUTF8(dense, []byte("x"))
	dst := make([]byte, 0, 4096)
	for _, c := range []struct {
		name string
		in   []byte
	}{{"plain", plain}, {"dense", dense}} {
		b.Run(c.name+"/word", func(b *testing.B) {
			b.SetBytes(int64(len(c.in)))
			for b.Loop() {
				dst = recAppendJSONValid(dst[:0], c.in)
			}
		})
		b.Run(c.name+"/byte", func(b *testing.B) {
			b.SetBytes(int64(len(c.in)))
			for b.Loop() {
				dst = recAppendJSONValidSlow(dst[:0], c.in)
			}
		})
	}
}
