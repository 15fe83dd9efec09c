package rtm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// The encryption handshake glue (spec §10.2): the client sends the plaintext
// *key quest and switches at once; the server reads it, answers encrypted
// and switches. Key derivation and the ciphers are in crypto.go and
// crypto_server.go. The client's runs in Dial before the goroutines start;
// the server's on the reader goroutine while the writer waits for it.

// longAgo returns a deadline in the past, to unblock I/O when a context
// ends.
func longAgo() time.Time { return time.Unix(1, 0) }

// clientHandshake sends the plaintext *key quest, switches both directions
// to AES-CFB stream mode and registers the *key quest so that its answer —
// the first ciphertext the gateway sends — is checked when it arrives: an
// error answer or none within the call timeout kills the connection.
func (c *Conn) clientHandshake(ctx context.Context, deadline time.Time) error {
	kx, err := NewKeyExchange(c.cfg.serverKey, c.cfg.bits, nil)
	if err != nil {
		return err
	}
	key, iv := kx.Key(), kx.IV()
	defer clear(key)
	block, err := newSessionBlock(key, iv)
	if err != nil {
		return err
	}
	rd, err := NewStreamReader(c.br, key, iv)
	if err != nil {
		return err
	}

	cl := &call{method: "*key", done: func(_ []byte, err error) {
		if err != nil && !errors.Is(err, ErrConnClosed) {
			c.fail(fmt.Errorf("rtm: conn %s: encryption handshake: %w", c.name, err))
		}
	}}
	seq, err := c.register(cl, c.cfg.callTimeout)
	if err != nil {
		return err
	}
	frame, off := BeginFrame(nil, FlagMsgpack, TwoWay, 0, seq, "*key")
	frame = FinishFrame(AppendKeyQuestPayload(frame, kx), 0, off)

	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.nc.SetWriteDeadline(deadline); err != nil {
		c.forget(seq, cl)
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetWriteDeadline(longAgo()) }) // Write reports it
	_, err = c.nc.Write(frame)
	if !stop() {
		err = context.Cause(ctx)
	}
	if err == nil {
		err = c.nc.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		c.forget(seq, cl)
		return fmt.Errorf("send *key: %w", err)
	}
	c.enc = newSessionCFB(block, iv, false)
	c.fr = NewFrameReader(rd, c.cfg.maxPayload)
	return nil
}

// serverHandshake runs on the reader goroutine before its first frame when
// the connection has a server key; the writer sends nothing until it is
// done (c.ready). It peeks at the client's first frame: a two-way *key quest
// is consumed, its key accepted, both directions switched to stream or
// package mode as the client asked, and its answer put in front of anything
// already queued, so that it is the first ciphertext the client reads. Any
// other first frame is left for the reader: the connection stays in
// plaintext. An error (a bad key, bits other than 128/256) is fatal, as on
// the C++ server.
func (c *Conn) serverHandshake() error {
	f, err := c.readKeyQuest()
	if err != nil || f == nil {
		close(c.ready)
		return err
	}
	req, err := ParseKeyExchangeRequest(f.Payload)
	if err != nil {
		return err
	}
	key, iv, err := c.cfg.serverPriv.Accept(req.PublicKey, req.Bits)
	if err != nil {
		return err
	}
	defer clear(key)
	maxFrame := HeaderSize + 4 + 255 + c.cfg.maxPayload
	var rd io.Reader
	if req.StreamMode {
		block, err := newSessionBlock(key, iv)
		if err != nil {
			return err
		}
		if rd, err = NewStreamReader(c.br, key, iv); err != nil {
			return err
		}
		c.enc = newSessionCFB(block, iv, false)
	} else {
		if rd, err = NewPackageReader(c.br, key, iv, maxFrame); err != nil {
			return err
		}
		if c.pw, err = NewPackageWriter(c.nc, key, iv, maxFrame); err != nil {
			return err
		}
	}
	c.fr = NewFrameReader(rd, c.cfg.maxPayload)
	c.wmu.Lock()
	if !c.wclosed {
		c.pending = append(AppendAnswer(nil, f.Seq, f.Flag), c.pending...)
	}
	c.wmu.Unlock()
	close(c.ready) // publishes c.enc and c.pw to the writer
	return nil
}

// readKeyQuest peeks at the first frame's header and method without
// consuming them; if it is a two-way *key quest it reads and returns it,
// otherwise it returns nil and leaves the frame for the reader.
func (c *Conn) readKeyQuest() (*Frame, error) {
	hdr, err := c.br.Peek(HeaderSize)
	if err != nil {
		return nil, err
	}
	h, err := ParseHeader(hdr, c.cfg.maxPayload)
	if err != nil {
		return nil, err
	}
	if h.Type != TwoWay || h.SS != 4 {
		return nil, nil
	}
	b, err := c.br.Peek(HeaderSize + 4 + 4)
	if err != nil {
		return nil, err
	}
	if string(b[HeaderSize+4:]) != "*key" {
		return nil, nil
	}
	return c.fr.Next()
}
