package rtm

// Gateway side of the FPNN encryption (spec §10), for the simulator: the
// server key pair, the *key quest as the server reads it, the server's checks
// on the client's key, and package mode (§10.4).

import (
	"bytes"
	"crypto/cipher"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// ServerPrivateKey is a gateway's EC key pair, as the C++ FPNN server keeps
// it (a raw big-endian scalar); the simulator uses it to accept encrypted
// connections. It is immutable and safe for concurrent use; printing or
// logging it never shows the scalar.
type ServerPrivateKey struct {
	curve  ecCurve
	priv   ecPrivate
	public *ServerKey
	pem    []byte
}

// GenerateServerKey makes a fresh key pair on the named curve ("secp256r1"
// or "prime256v1", "secp256k1", "secp224r1"; "secp192r1" fails with
// [ErrUnsupportedCurve]). rand must be a cryptographically secure source;
// nil means crypto/rand.Reader.
func GenerateServerKey(curve string, rand io.Reader) (*ServerPrivateKey, error) {
	c := ecCurveByName(curve)
	if c == ecUnknown {
		return nil, fmt.Errorf("rtm: generate server key: %w %q", ErrUnsupportedCurve, curve)
	}
	priv, err := ecGenerate(c, rand)
	if err != nil {
		return nil, fmt.Errorf("rtm: generate server key: %w", err)
	}
	k, err := newServerPrivateKey(c, priv)
	if err != nil {
		return nil, fmt.Errorf("rtm: generate server key: %w", err)
	}
	return k, nil
}

// ParseServerPrivateKey builds a key pair from the raw big-endian private
// scalar (exactly the curve size: 32 bytes for secp256r1 and secp256k1, 28
// for secp224r1), the format of the C++ server's key file.
func ParseServerPrivateKey(curve string, raw []byte) (*ServerPrivateKey, error) {
	c := ecCurveByName(curve)
	if c == ecUnknown {
		return nil, fmt.Errorf("rtm: parse server private key: %w %q", ErrUnsupportedCurve, curve)
	}
	priv, err := ecPrivateFromScalar(c, raw)
	if err != nil {
		return nil, fmt.Errorf("rtm: parse server private key: %w", err)
	}
	k, err := newServerPrivateKey(c, priv)
	if err != nil {
		return nil, fmt.Errorf("rtm: parse server private key: %w", err)
	}
	return k, nil
}

func newServerPrivateKey(c ecCurve, priv ecPrivate) (*ServerPrivateKey, error) {
	xy := priv.publicXY()
	params, err := asn1.Marshal(c.oid())
	if err != nil {
		return nil, fmt.Errorf("encode curve OID: %w", err)
	}
	der, err := asn1.Marshal(ecSPKI{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidECPublicKey(), Parameters: asn1.RawValue{FullBytes: params}},
		PublicKey: asn1.BitString{Bytes: ecUncompressed(xy), BitLength: 8 * (1 + len(xy))},
	})
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return &ServerPrivateKey{
		curve:  c,
		priv:   priv,
		public: &ServerKey{curve: c, xy: xy},
		pem:    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
	}, nil
}

// Curve returns the key's curve name, as [ServerKey.Curve].
func (k *ServerPrivateKey) Curve() string { return k.curve.String() }

// Public returns the public half, as a client would get it from
// [ParseServerKey] on [ServerPrivateKey.PublicPEM].
func (k *ServerPrivateKey) Public() *ServerKey { return k.public }

// PublicPEM returns the public key as the PEM "PUBLIC KEY" block (X.509
// SubjectPublicKeyInfo, named curve, uncompressed point) that the gateway
// operator hands to clients. The slice is a copy.
func (k *ServerPrivateKey) PublicPEM() []byte { return append([]byte(nil), k.pem...) }

// Accept does the server's half of the handshake for a client's *key quest
// and returns the session key and IV, or the reason the C++ FPNN server
// would close the connection: bits other than 128 or 256 (0, i.e. absent,
// means 128); a public key that is not exactly 2×curve size bytes (this
// rejects the official SDKs' 64-byte zero-padded keys on secp224r1, spec
// §10.6); or a point not on the curve. Errors never contain key material.
func (k *ServerPrivateKey) Accept(clientPub []byte, bits int) (key, iv []byte, err error) {
	if bits == 0 {
		bits = 128
	}
	if bits != 128 && bits != 256 {
		return nil, nil, fmt.Errorf("rtm: accept key exchange: %w, got %d", errKXBits, bits)
	}
	if want := 2 * k.curve.size(); len(clientPub) != want {
		hint := ""
		if len(clientPub) == 64 {
			hint = " (a zero-padded key, as the official SDKs send on small curves?)"
		}
		return nil, nil, fmt.Errorf("rtm: accept key exchange: %w: got %d bytes, %s needs %d%s",
			errKXKeyLen, len(clientPub), k.curve, want, hint)
	}
	secret, err := k.priv.sharedX(clientPub)
	if err != nil {
		return nil, nil, fmt.Errorf("rtm: accept key exchange: %w", err)
	}
	defer clear(secret)
	key, iv = deriveSessionKeys(secret, bits)
	return key, iv, nil
}

// String describes the key without its private scalar.
func (k *ServerPrivateKey) String() string {
	return fmt.Sprintf("rtm.ServerPrivateKey{%s, private key redacted}", k.curve)
}

// GoString is String, so that %#v does not print the scalar either.
func (k *ServerPrivateKey) GoString() string { return k.String() }

// LogValue makes slog print the curve only, never the scalar.
func (k *ServerPrivateKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("curve", k.curve.String()), slog.String("private_key", "REDACTED"))
}

// KeyExchangeRequest is the payload of a client's *key quest as a gateway
// reads it (spec §10.2, §10.4).
type KeyExchangeRequest struct {
	// PublicKey is the client's X‖Y as sent (bin from Go clients, str from
	// C++ ones); [ServerPrivateKey.Accept] checks its length.
	PublicKey []byte
	// Bits is the requested AES key size as sent; 0 when absent (means 128).
	Bits int
	// StreamMode selects stream mode; false when absent (package mode).
	StreamMode bool
}

// ParseKeyExchangeRequest decodes a *key quest's msgpack payload: a map with
// publicKey (str or bin, required), bits (any integer format, optional) and
// streamMode (optional), in any key order; other keys and nil values are
// ignored.
func ParseKeyExchangeRequest(payload []byte) (KeyExchangeRequest, error) {
	var req KeyExchangeRequest
	rd := bytes.NewReader(payload)
	dec := msgpack.NewDecoder(rd)
	n, err := dec.DecodeMapLen()
	if err != nil {
		return req, fmt.Errorf("rtm: parse *key quest: %w", err)
	}
	if n < 0 {
		return req, errors.New("rtm: parse *key quest: payload is nil, want a map")
	}
	havePub := false
	for range n {
		name, err := dec.DecodeString()
		if err != nil {
			return req, fmt.Errorf("rtm: parse *key quest: key: %w", err)
		}
		if c, err := dec.PeekCode(); err == nil && c == msgpcode.Nil {
			if err := dec.Skip(); err != nil {
				return req, fmt.Errorf("rtm: parse *key quest: %s: %w", name, err)
			}
			continue
		}
		switch name {
		case "publicKey":
			req.PublicKey, err = dec.DecodeBytes()
			havePub = true
		case "bits":
			var v int64
			v, err = dec.DecodeInt64()
			req.Bits = int(v)
		case "streamMode":
			req.StreamMode, err = dec.DecodeBool()
		default:
			err = dec.Skip()
		}
		if err != nil {
			return req, fmt.Errorf("rtm: parse *key quest: %s: %w", name, err)
		}
	}
	if rd.Len() != 0 {
		return req, fmt.Errorf("rtm: parse *key quest: %d bytes after the map", rd.Len())
	}
	if !havePub {
		return req, errors.New("rtm: parse *key quest: no publicKey")
	}
	return req, nil
}

// ErrPackageTooLarge is returned by package-mode readers and writers for a
// frame above their maximum; a reader returns it before allocating anything
// for the frame.
var ErrPackageTooLarge = errors.New("rtm: encrypted package exceeds the maximum frame size")

// errPackageSize reports a package whose length prefix does not match the
// frame inside it.
var errPackageSize = errors.New("package length does not match its frame")

const (
	// packageDefaultMax is the package-mode frame limit when none is given:
	// the C++ FPNN default maximum package length, whole frame (spec §2).
	packageDefaultMax = 8 << 20
	packageHeaderLen  = 12
)

// packageFrameLen returns the total length of the FPNN frame whose 12-byte
// header is hdr (spec §2): 12 + payload_size, + 4 (seq) for two-way quests
// and answers, + ss (method) for quests.
func packageFrameLen(hdr []byte) (int, error) {
	n := packageHeaderLen + int(binary.LittleEndian.Uint32(hdr[8:12]))
	switch mtype := hdr[6]; mtype {
	case 0:
		n += int(hdr[7])
	case 1:
		n += 4 + int(hdr[7])
	case 2:
		n += 4
	default:
		return 0, fmt.Errorf("frame has mtype %d", mtype)
	}
	return n, nil
}

// packageMax resolves a maxFrame argument.
func packageMax(maxFrame int) (int, error) {
	switch {
	case maxFrame < 0:
		return 0, fmt.Errorf("negative maximum frame size %d", maxFrame)
	case maxFrame == 0:
		return packageDefaultMax, nil
	case uint64(maxFrame) > math.MaxUint32:
		// The length prefix is a uint32. (Not a constant conversion, so
		// that 32-bit builds compile; there the case cannot happen.)
		limit := uint64(math.MaxUint32)
		return int(limit), nil
	}
	return maxFrame, nil
}

// NewPackageReader returns a reader for a package-mode peer (spec §10.4):
// from r it reads each frame's clear uint32 LE length and its ciphertext,
// decrypts it with a fresh AES-CFB started from iv, checks that the frame's
// own size equals the length, and hands out the plaintext frames as one
// stream, so a frame reader on top needs no change. A length above maxFrame
// (whole frame, header included; 0 means 8 MiB) fails with
// [ErrPackageTooLarge] before anything is allocated. Every error is final.
func NewPackageReader(r io.Reader, key, iv []byte, maxFrame int) (io.Reader, error) {
	block, err := newSessionBlock(key, iv)
	if err != nil {
		return nil, fmt.Errorf("rtm: package reader: %w", err)
	}
	limit, err := packageMax(maxFrame)
	if err != nil {
		return nil, fmt.Errorf("rtm: package reader: %w", err)
	}
	return &packageReader{r: r, block: block, iv: append([]byte(nil), iv...), max: limit}, nil
}

type packageReader struct {
	r     io.Reader
	block cipher.Block
	iv    []byte
	max   int
	buf   []byte // the current frame, decrypted
	off   int    // bytes of buf already handed out
	err   error  // sticky
}

func (p *packageReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for p.off == len(p.buf) {
		if p.err != nil {
			return 0, p.err
		}
		p.err = p.next()
	}
	n := copy(b, p.buf[p.off:])
	p.off += n
	return n, nil
}

// next reads and decrypts one package into p.buf.
func (p *packageReader) next() error {
	var lenBuf [4]byte
	if _, err := io.ReadFull(p.r, lenBuf[:]); err != nil {
		if err == io.EOF {
			return io.EOF // clean end between packages
		}
		return fmt.Errorf("rtm: read package length: %w", err)
	}
	n := binary.LittleEndian.Uint32(lenBuf[:])
	if uint64(n) > uint64(p.max) {
		return fmt.Errorf("%w: %d bytes announced, limit %d", ErrPackageTooLarge, n, p.max)
	}
	if n < packageHeaderLen {
		return fmt.Errorf("rtm: read package: %w: length %d is shorter than a frame header", errPackageSize, n)
	}
	if cap(p.buf) < int(n) {
		p.buf = make([]byte, n)
	}
	p.buf, p.off = p.buf[:n], 0
	if _, err := io.ReadFull(p.r, p.buf); err != nil {
		p.buf = p.buf[:0]
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("rtm: read package: %w", err)
	}
	newSessionCFB(p.block, p.iv, true).XORKeyStream(p.buf, p.buf)
	size, err := packageFrameLen(p.buf)
	if err == nil && size != int(n) {
		err = fmt.Errorf("%w: length %d, frame %d", errPackageSize, n, size)
	}
	if err != nil {
		p.buf = p.buf[:0]
		return fmt.Errorf("rtm: read package: %w", err)
	}
	return nil
}

// NewPackageWriter returns a writer for a package-mode peer (spec §10.4):
// it splits what is written into FPNN frames by their headers and sends each
// as a clear uint32 LE length followed by the frame encrypted with a fresh
// AES-CFB started from iv. Writes may hold any number of frames or parts of
// one; an incomplete frame is kept until the rest is written, and nothing is
// sent for it before then. A frame above maxFrame (0 means 8 MiB) or with an
// invalid mtype fails with an error; every error is final.
func NewPackageWriter(w io.Writer, key, iv []byte, maxFrame int) (io.Writer, error) {
	block, err := newSessionBlock(key, iv)
	if err != nil {
		return nil, fmt.Errorf("rtm: package writer: %w", err)
	}
	limit, err := packageMax(maxFrame)
	if err != nil {
		return nil, fmt.Errorf("rtm: package writer: %w", err)
	}
	return &packageWriter{w: w, block: block, iv: append([]byte(nil), iv...), max: limit}, nil
}

type packageWriter struct {
	w       io.Writer
	block   cipher.Block
	iv      []byte
	max     int
	pending []byte // plaintext of an incomplete frame
	out     []byte // reused output buffer
	err     error  // sticky
}

func (p *packageWriter) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	p.pending = append(p.pending, b...)
	out := p.out[:0]
	done := 0
	for {
		rest := p.pending[done:]
		if len(rest) < packageHeaderLen {
			break
		}
		size, err := packageFrameLen(rest)
		if err != nil {
			p.err = fmt.Errorf("rtm: write package: %w", err)
			return 0, p.err
		}
		if size > p.max {
			p.err = fmt.Errorf("%w: %d-byte frame, limit %d", ErrPackageTooLarge, size, p.max)
			return 0, p.err
		}
		if len(rest) < size {
			break
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(size))
		start := len(out)
		out = append(out, rest[:size]...)
		newSessionCFB(p.block, p.iv, false).XORKeyStream(out[start:], out[start:])
		done += size
	}
	p.pending = p.pending[:copy(p.pending, p.pending[done:])]
	p.out = out
	if len(out) > 0 {
		if _, err := p.w.Write(out); err != nil {
			p.err = fmt.Errorf("rtm: write package: %w", err)
			return 0, p.err
		}
	}
	return len(b), nil
}
