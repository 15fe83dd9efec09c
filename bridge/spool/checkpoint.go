package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	ckptName  = "CHECKPOINT"
	ckptTmp   = "CHECKPOINT.tmp"
	ckptMagic = "r2kckpt\x01"
	ckptLen   = len(ckptMagic) + 8 + 4
)

// readCheckpoint returns the persisted trim point: every record with a
// sequence number up to and including it was acked and may be skipped. A
// missing file is 0; an invalid one is 0 with bad set.
func readCheckpoint(dir string) (seq uint64, bad bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, ckptName))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read checkpoint: %w", err)
	}
	if len(b) != ckptLen || string(b[:len(ckptMagic)]) != ckptMagic ||
		crc32.Checksum(b[:ckptLen-4], castagnoli) != binary.LittleEndian.Uint32(b[ckptLen-4:]) {
		return 0, true, nil
	}
	return binary.LittleEndian.Uint64(b[len(ckptMagic):]), false, nil
}

// writeCheckpoint persists seq as the trim point atomically: temporary file,
// fsync, rename, fsync of the directory.
func writeCheckpoint(dir string, seq uint64) error {
	b := make([]byte, 0, ckptLen)
	b = append(b, ckptMagic...)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(dir, ckptTmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ckptName)); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory so that created, renamed and removed entries
// are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}
