//go:build unix

package spool

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWritePidReportsFailure: a pid that cannot be written is an error
// (it used to be swallowed by a shadowed err).
func TestWritePidReportsFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "LOCK")
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(path) // read-only: Truncate and WriteAt fail
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := writePid(ro, 42); err == nil {
		t.Fatal("writePid on a read-only file succeeded; want an error")
	}
	rw, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if err := writePid(rw, 42); err != nil {
		t.Fatalf("writePid: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "42\n" {
		t.Fatalf("LOCK holds %q, want %q", b, "42\n")
	}
}
