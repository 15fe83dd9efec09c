package spool

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testRec returns a deterministic record i with a value of n bytes.
func testRec(i, n int) Record {
	v := make([]byte, n)
	for j := range v {
		v[j] = byte(i + j)
	}
	return Record{
		Topic:   fmt.Sprintf("rtm.p2p.chat.%d", i%3),
		Key:     []byte(fmt.Sprintf("key-%d", i)),
		Value:   v,
		Headers: []Header{{Key: "rtm-mid", Value: []byte(fmt.Sprint(i))}, {Key: "i", Value: []byte{byte(i)}}},
		Time:    1_700_000_000_000 + int64(i),
	}
}

// sameRecord reports whether a and b are equal, nil-ness included.
func sameRecord(a, b Record) bool {
	eqb := func(x, y []byte) bool { return (x == nil) == (y == nil) && bytes.Equal(x, y) }
	if a.Topic != b.Topic || a.Time != b.Time || !eqb(a.Key, b.Key) || !eqb(a.Value, b.Value) ||
		len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !eqb(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}

// mustOpen opens dir or fails the test; the spool is closed at cleanup.
func mustOpen(t testing.TB, dir string, o Options) *Spool {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() }) // idempotent; tests that reopen close explicitly
	return s
}

// testLogger logs through t.Log, so output shows only for failing tests.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// drainAll peeks and trims until the spool is empty, with the given limits,
// and returns every record in order.
func drainAll(t testing.TB, s *Spool, maxRecs int, maxBytes int64) []Entry {
	t.Helper()
	var all []Entry
	for s.Len() > 0 {
		es, err := s.Peek(maxRecs, maxBytes)
		if err != nil {
			t.Fatalf("Peek: %v", err)
		}
		if len(es) == 0 {
			t.Fatalf("Peek returned nothing with Len %d", s.Len())
		}
		all = append(all, es...)
		if err := s.Trim(es[len(es)-1].Pos); err != nil {
			t.Fatalf("Trim: %v", err)
		}
	}
	return all
}

// segFiles lists the segment file names in dir.
func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	slices.Sort(m)
	return m
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
