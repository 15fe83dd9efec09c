package rtm

// Client side of the optional FPNN encryption (spec §10): the gateway's public
// key, the ephemeral ECDH exchange, the *key quest payload and the AES-CFB
// stream wrappers. The gateway side (used by the simulator) is in
// crypto_server.go.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5" //nolint:gosec // G501: the FPNN protocol derives the IV as MD5(secret) (spec §10.3); not used for integrity.
	cryptorand "crypto/rand"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/rtm2kafka/rtm2kafka/rtm/mpack"
)

// ErrUnsupportedCurve is returned (wrapped, followed by the curve's name or
// OID) for a server key on a curve this package cannot do ECDH on: anything
// but secp256r1, secp256k1 and secp224r1. secp192r1 is recognised but not
// supported: neither the Go standard library nor a maintained Go module in
// this project's dependencies implements it.
var ErrUnsupportedCurve = errors.New("unsupported curve")

// Errors of the key exchange, wrapped with the operation and the values that
// failed (never key material).
var (
	errKXBits   = errors.New("bits must be 128 or 256")
	errKXKeyLen = errors.New("public key length mismatch")
	errKXPoint  = errors.New("public key is not a point on the curve")
)

// ecCurve names one of the FPNN curves (spec §10.1).
type ecCurve uint8

const (
	ecUnknown   ecCurve = iota
	ecP256              // secp256r1, prime256v1, NIST P-256
	ecSecp256k1         // secp256k1
	ecP224              // secp224r1, NIST P-224
	ecP192              // secp192r1, prime192v1, NIST P-192 (recognised, not supported)
)

// String returns the curve's SEC 2 name, as the C++ FPNN server spells it.
func (c ecCurve) String() string {
	switch c {
	case ecP256:
		return "secp256r1"
	case ecSecp256k1:
		return "secp256k1"
	case ecP224:
		return "secp224r1"
	case ecP192:
		return "secp192r1"
	}
	return "unknown curve"
}

// size is the curve's coordinate (and shared secret) size in bytes.
func (c ecCurve) size() int {
	switch c {
	case ecP256, ecSecp256k1:
		return 32
	case ecP224:
		return 28
	case ecP192:
		return 24
	}
	return 0
}

// oid is the curve's namedCurve object identifier (RFC 5480, SEC 2).
func (c ecCurve) oid() asn1.ObjectIdentifier {
	switch c {
	case ecP256:
		return asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	case ecSecp256k1:
		return asn1.ObjectIdentifier{1, 3, 132, 0, 10}
	case ecP224:
		return asn1.ObjectIdentifier{1, 3, 132, 0, 33}
	case ecP192:
		return asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 1}
	}
	return nil
}

// supported reports whether ECDH is implemented for the curve.
func (c ecCurve) supported() bool {
	return c == ecP256 || c == ecSecp256k1 || c == ecP224
}

// ecCurveByOID maps a namedCurve OID to its curve, or ecUnknown.
func ecCurveByOID(oid asn1.ObjectIdentifier) ecCurve {
	for _, c := range [...]ecCurve{ecP256, ecSecp256k1, ecP224, ecP192} {
		if oid.Equal(c.oid()) {
			return c
		}
	}
	return ecUnknown
}

// ecCurveByName maps a curve name (SEC 2, X9.62 or NIST spelling, any case) to
// its curve, or ecUnknown.
func ecCurveByName(name string) ecCurve {
	switch strings.ToLower(name) {
	case "secp256r1", "prime256v1", "p-256", "p256":
		return ecP256
	case "secp256k1":
		return ecSecp256k1
	case "secp224r1", "p-224", "p224":
		return ecP224
	case "secp192r1", "prime192v1", "p-192", "p192":
		return ecP192
	}
	return ecUnknown
}

// oidECPublicKey is id-ecPublicKey (RFC 5480), built per call so that the
// package keeps no mutable globals.
func oidECPublicKey() asn1.ObjectIdentifier {
	return asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
}

// ecSPKI is the DER shape of a PEM "PUBLIC KEY" block (SubjectPublicKeyInfo).
type ecSPKI struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

// ecUncompressed returns 0x04‖xy, the SEC 1 uncompressed encoding.
func ecUncompressed(xy []byte) []byte {
	b := make([]byte, 1+len(xy))
	b[0] = 4
	copy(b[1:], xy)
	return b
}

// ecCheckPoint validates that xy (X‖Y, 2×size bytes) is a point on a
// supported curve. Library errors are not wrapped: some quote the point.
func ecCheckPoint(c ecCurve, xy []byte) error {
	if len(xy) != 2*c.size() {
		return fmt.Errorf("%w: %d bytes, want %d", errKXKeyLen, len(xy), 2*c.size())
	}
	var err error
	switch c {
	case ecP256:
		_, err = ecdh.P256().NewPublicKey(ecUncompressed(xy))
	case ecP224:
		_, err = ecdsa.ParseUncompressedPublicKey(elliptic.P224(), ecUncompressed(xy))
	case ecSecp256k1:
		_, err = secp256k1.ParsePubKey(ecUncompressed(xy))
	default:
		return fmt.Errorf("%w %s", ErrUnsupportedCurve, c)
	}
	if err != nil {
		return fmt.Errorf("%w %s", errKXPoint, c)
	}
	return nil
}

// ecPrivate is a private key on one of the supported curves.
type ecPrivate interface {
	// publicXY returns the public key as X‖Y, 2×size bytes, no 0x04 prefix.
	publicXY() []byte
	// sharedX validates the peer's X‖Y point and returns the X coordinate of
	// the shared ECDH point, size bytes.
	sharedX(peerXY []byte) ([]byte, error)
}

// ecPrivateFromScalar builds a private key from its raw big-endian scalar,
// exactly size bytes and in [1, n-1]. The error never quotes the scalar.
func ecPrivateFromScalar(c ecCurve, scalar []byte) (ecPrivate, error) {
	if !c.supported() {
		return nil, fmt.Errorf("%w %s", ErrUnsupportedCurve, c)
	}
	if len(scalar) != c.size() {
		return nil, fmt.Errorf("private key is %d bytes, want %d for %s", len(scalar), c.size(), c)
	}
	invalid := fmt.Errorf("private key is not a valid %s scalar (zero or not below the group order)", c)
	switch c {
	case ecP256:
		k, err := ecdh.P256().NewPrivateKey(scalar)
		if err != nil {
			return nil, invalid
		}
		return ecP256Key{k: k}, nil
	case ecP224:
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P224(), scalar)
		if err != nil {
			return nil, invalid
		}
		pub, err := k.PublicKey.Bytes()
		if err != nil {
			return nil, invalid
		}
		return ecP224Key{scalar: append([]byte(nil), scalar...), xy: pub[1:]}, nil
	default: // ecSecp256k1
		var s secp256k1.ModNScalar
		if overflow := s.SetByteSlice(scalar); overflow || s.IsZero() {
			return nil, invalid
		}
		k := secp256k1.NewPrivateKey(&s)
		return ecK256Key{k: k, xy: k.PubKey().SerializeUncompressed()[1:]}, nil
	}
}

// ecGenerate makes a fresh private key from rand (nil means crypto/rand) by
// rejection sampling: size random bytes, kept if they form a valid scalar.
// It reads rand itself, unlike crypto/ecdh's GenerateKey, which ignores its
// argument since Go 1.26; so a test can inject a deterministic source.
func ecGenerate(c ecCurve, rand io.Reader) (ecPrivate, error) {
	if !c.supported() {
		return nil, fmt.Errorf("%w %s", ErrUnsupportedCurve, c)
	}
	if rand == nil {
		rand = cryptorand.Reader
	}
	buf := make([]byte, c.size())
	defer clear(buf)
	// Each try fails with probability below 2^-32 for these curves, so 64
	// failures mean a broken source, not bad luck.
	for range 64 {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("read random bytes: %w", err)
		}
		if k, err := ecPrivateFromScalar(c, buf); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("random source gave no valid %s scalar in 64 tries", c)
}

// ecP256Key is a secp256r1 key, done with crypto/ecdh.
type ecP256Key struct{ k *ecdh.PrivateKey }

func (p ecP256Key) publicXY() []byte { return p.k.PublicKey().Bytes()[1:] }

func (p ecP256Key) sharedX(peerXY []byte) ([]byte, error) {
	if len(peerXY) != 64 {
		return nil, fmt.Errorf("%w: %d bytes, want 64", errKXKeyLen, len(peerXY))
	}
	pub, err := ecdh.P256().NewPublicKey(ecUncompressed(peerXY))
	if err != nil {
		return nil, fmt.Errorf("%w %s", errKXPoint, ecP256)
	}
	secret, err := p.k.ECDH(pub)
	if err != nil {
		return nil, errors.New("ecdh on secp256r1 failed")
	}
	return secret, nil
}

// ecP224Key is a secp224r1 key. crypto/ecdh has no P-224, so the scalar
// multiplication uses crypto/elliptic's P224, which is backed by the same
// constant-time nistec code; the peer point is validated first with
// crypto/ecdsa (ScalarMult panics on invalid points).
type ecP224Key struct {
	scalar []byte
	xy     []byte
}

func (p ecP224Key) publicXY() []byte { return append([]byte(nil), p.xy...) }

func (p ecP224Key) sharedX(peerXY []byte) ([]byte, error) {
	if err := ecCheckPoint(ecP224, peerXY); err != nil {
		return nil, err
	}
	x := new(big.Int).SetBytes(peerXY[:28])
	y := new(big.Int).SetBytes(peerXY[28:])
	// crypto/ecdh does not offer P-224, and the FPNN protocol allows
	// secp224r1 (spec §10.1); elliptic.P224 is the standard library's only
	// P-224 scalar multiplication. The point was validated above.
	//lint:ignore SA1019 crypto/ecdh has no P-224; elliptic.P224 is the stdlib's constant-time nistec P-224.
	sx, sy := elliptic.P224().ScalarMult(x, y, p.scalar) //nolint:staticcheck // SA1019: crypto/ecdh has no P-224 (see above).
	if sx.Sign() == 0 && sy.Sign() == 0 {
		return nil, errors.New("ecdh on secp224r1 gave the point at infinity")
	}
	return sx.FillBytes(make([]byte, 28)), nil
}

// ecK256Key is a secp256k1 key, done with decred's secp256k1 module.
type ecK256Key struct {
	k  *secp256k1.PrivateKey
	xy []byte
}

func (p ecK256Key) publicXY() []byte { return append([]byte(nil), p.xy...) }

func (p ecK256Key) sharedX(peerXY []byte) ([]byte, error) {
	if len(peerXY) != 64 {
		return nil, fmt.Errorf("%w: %d bytes, want 64", errKXKeyLen, len(peerXY))
	}
	pub, err := secp256k1.ParsePubKey(ecUncompressed(peerXY))
	if err != nil {
		return nil, fmt.Errorf("%w %s", errKXPoint, ecSecp256k1)
	}
	return secp256k1.GenerateSharedSecret(p.k, pub), nil
}

// deriveSessionKeys turns the ECDH secret (the shared point's X, curve-size
// bytes) into the AES key and IV exactly as the C++ FPNN server does (spec
// §10.3): AES-128 takes the first 16 bytes; AES-256 takes the secret itself
// when it is 32 bytes, else its SHA-256; the IV is MD5 of the secret.
func deriveSessionKeys(secret []byte, bits int) (key, iv []byte) {
	sum := md5.Sum(secret) //nolint:gosec // G401: protocol-mandated IV derivation (spec §10.3).
	iv = sum[:]
	switch {
	case bits == 128:
		key = append([]byte(nil), secret[:16]...)
	case len(secret) == 32:
		key = append([]byte(nil), secret...)
	default:
		h := sha256.Sum256(secret)
		key = h[:]
	}
	return key, iv
}

// ServerKey is the gateway's EC public key, parsed from the PEM the operator
// hands out; it is immutable and safe to share between connections.
type ServerKey struct {
	curve ecCurve
	xy    []byte // X‖Y, 2×size bytes
}

// Curve returns the key's curve name: "secp256r1", "secp256k1" or
// "secp224r1".
func (k *ServerKey) Curve() string { return k.curve.String() }

// Size returns the curve size in bytes (32, 32 or 28): the length of the
// shared secret and of each public key coordinate.
func (k *ServerKey) Size() int { return k.curve.size() }

// ParseServerKey parses the gateway's public key from a PEM "PUBLIC KEY"
// block (SubjectPublicKeyInfo, uncompressed point, named curve) and checks
// that the point is on the curve. Keys on secp192r1 or any curve other than
// secp256r1, secp256k1 and secp224r1 fail with [ErrUnsupportedCurve].
func ParseServerKey(pemBytes []byte) (*ServerKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("rtm: parse server key: no PEM block found")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("rtm: parse server key: PEM block type is %q, want \"PUBLIC KEY\"", block.Type)
	}
	var spki ecSPKI
	rest, err := asn1.Unmarshal(block.Bytes, &spki)
	if err != nil {
		return nil, fmt.Errorf("rtm: parse server key: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("rtm: parse server key: trailing data after SubjectPublicKeyInfo")
	}
	if !spki.Algorithm.Algorithm.Equal(oidECPublicKey()) {
		return nil, fmt.Errorf("rtm: parse server key: not an EC public key (algorithm %s)", spki.Algorithm.Algorithm)
	}
	var curveOID asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curveOID); err != nil || len(rest) != 0 {
		return nil, errors.New("rtm: parse server key: EC parameters are not a named curve")
	}
	c := ecCurveByOID(curveOID)
	switch {
	case c == ecUnknown:
		return nil, fmt.Errorf("rtm: parse server key: %w (OID %s)", ErrUnsupportedCurve, curveOID)
	case !c.supported():
		return nil, fmt.Errorf("rtm: parse server key: %w %s", ErrUnsupportedCurve, c)
	}
	pt := spki.PublicKey.Bytes
	if spki.PublicKey.BitLength != 8*len(pt) || len(pt) != 1+2*c.size() || pt[0] != 4 {
		return nil, fmt.Errorf("rtm: parse server key: not an uncompressed %s point", c)
	}
	xy := append([]byte(nil), pt[1:]...)
	if err := ecCheckPoint(c, xy); err != nil {
		return nil, fmt.Errorf("rtm: parse server key: %w", err)
	}
	return &ServerKey{curve: c, xy: xy}, nil
}

// KeyExchange is the client's half of one connection's ECDH handshake: the
// ephemeral public key to send in the *key quest and the AES key and IV both
// directions then use. Make a new one per connection; it holds no private
// key, only the derived session key, so don't log it ([KeyExchange.String]
// redacts it).
type KeyExchange struct {
	curve ecCurve
	bits  int
	pub   []byte // X‖Y
	key   []byte
	iv    []byte
}

// NewKeyExchange generates an ephemeral key pair on the server key's curve
// and derives the session key and IV (spec §10.3). bits must be 128 or 256:
// unlike the gateway, which reads an absent bits as 128, the client always
// says what it wants (the official Go client uses 256). rand must be a
// cryptographically secure source; nil means crypto/rand.Reader.
func NewKeyExchange(server *ServerKey, bits int, rand io.Reader) (*KeyExchange, error) {
	if server == nil {
		return nil, errors.New("rtm: key exchange: nil server key")
	}
	if bits != 128 && bits != 256 {
		return nil, fmt.Errorf("rtm: key exchange: %w, got %d", errKXBits, bits)
	}
	priv, err := ecGenerate(server.curve, rand)
	if err != nil {
		return nil, fmt.Errorf("rtm: key exchange: %w", err)
	}
	return finishKeyExchange(server, priv, bits)
}

// newKeyExchangeWithPrivate is NewKeyExchange with a fixed client private
// scalar (big-endian, curve size bytes), for the golden vectors.
func newKeyExchangeWithPrivate(server *ServerKey, priv []byte, bits int) (*KeyExchange, error) {
	if server == nil {
		return nil, errors.New("rtm: key exchange: nil server key")
	}
	if bits != 128 && bits != 256 {
		return nil, fmt.Errorf("rtm: key exchange: %w, got %d", errKXBits, bits)
	}
	k, err := ecPrivateFromScalar(server.curve, priv)
	if err != nil {
		return nil, fmt.Errorf("rtm: key exchange: %w", err)
	}
	return finishKeyExchange(server, k, bits)
}

func finishKeyExchange(server *ServerKey, priv ecPrivate, bits int) (*KeyExchange, error) {
	secret, err := priv.sharedX(server.xy)
	if err != nil {
		return nil, fmt.Errorf("rtm: key exchange: %w", err)
	}
	defer clear(secret)
	key, iv := deriveSessionKeys(secret, bits)
	return &KeyExchange{curve: server.curve, bits: bits, pub: priv.publicXY(), key: key, iv: iv}, nil
}

// PublicKey returns the client's ephemeral public key as sent in the *key
// quest: X‖Y, big-endian, exactly 2×curve size bytes, no 0x04 prefix. The
// slice is a copy.
func (kx *KeyExchange) PublicKey() []byte { return append([]byte(nil), kx.pub...) }

// Bits returns the AES key size in bits, 128 or 256.
func (kx *KeyExchange) Bits() int { return kx.bits }

// Key returns a copy of the AES key (16 or 32 bytes) for
// [NewStreamReader] and [NewStreamWriter].
func (kx *KeyExchange) Key() []byte { return append([]byte(nil), kx.key...) }

// IV returns a copy of the 16-byte IV both directions start from.
func (kx *KeyExchange) IV() []byte { return append([]byte(nil), kx.iv...) }

// String describes the exchange without its key or IV, so that it can be
// logged or printed safely.
func (kx *KeyExchange) String() string {
	return fmt.Sprintf("rtm.KeyExchange{%s, AES-%d, key redacted}", kx.curve, kx.bits)
}

// GoString is String, so that %#v does not print the key either.
func (kx *KeyExchange) GoString() string { return kx.String() }

// LogValue makes slog print the curve and key size, never the key.
func (kx *KeyExchange) LogValue() slog.Value {
	return slog.GroupValue(slog.String("curve", kx.curve.String()), slog.Int("bits", kx.bits), slog.String("key", "REDACTED"))
}

// AppendKeyQuestPayload appends the msgpack payload of the *key quest to dst
// and returns the extended slice: a map {bits, publicKey, streamMode: true}
// with keys in bytewise order, bits with the Go SDK's integer width (int16 for
// 128 and 256), publicKey as bin (spec §10.2, §3.2). The bytes equal the
// golden vectors'.
func AppendKeyQuestPayload(dst []byte, kx *KeyExchange) []byte {
	dst = mpack.AppendMapHeader(dst, 3) // keys sorted, spec §3.2
	dst = mpack.AppendIntGo(mpack.AppendStr(dst, "bits"), int64(kx.bits))
	dst = mpack.AppendBin(mpack.AppendStr(dst, "publicKey"), kx.pub)
	return mpack.AppendBool(mpack.AppendStr(dst, "streamMode"), true)
}

// newSessionBlock checks the session key and IV sizes and returns the AES
// block cipher.
func newSessionBlock(key, iv []byte) (cipher.Block, error) {
	if len(key) != 16 && len(key) != 32 {
		return nil, fmt.Errorf("AES key is %d bytes, want 16 or 32", len(key))
	}
	if len(iv) != aes.BlockSize {
		return nil, fmt.Errorf("IV is %d bytes, want %d", len(iv), aes.BlockSize)
	}
	return aes.NewCipher(key)
}

// newSessionCFB returns a fresh AES-CFB (128-bit feedback) stream started
// from iv. This is the package's only use of CFB.
func newSessionCFB(block cipher.Block, iv []byte, decrypt bool) cipher.Stream {
	// Go deprecates CFB in favour of AEAD modes, but the FPNN wire protocol
	// is AES-CFB with 128-bit feedback (spec §10): the gateway understands
	// nothing else, so there is no replacement to switch to.
	if decrypt {
		//lint:ignore SA1019 the FPNN protocol mandates AES-CFB (spec §10); see above.
		return cipher.NewCFBDecrypter(block, iv) //nolint:staticcheck // SA1019: FPNN mandates AES-CFB (spec §10).
	}
	//lint:ignore SA1019 the FPNN protocol mandates AES-CFB (spec §10); see above.
	return cipher.NewCFBEncrypter(block, iv) //nolint:staticcheck // SA1019: FPNN mandates AES-CFB (spec §10).
}

// NewStreamReader returns a reader that decrypts r as one continuous AES-CFB
// stream (stream mode, spec §10.3), for the bytes a peer sends after the *key
// handshake. r must be positioned at the first encrypted byte: if the raw
// connection was read through a buffer, wrap that buffer, not the socket.
// key is 16 or 32 bytes and iv 16 (from [KeyExchange]); any read split gives
// the same plaintext.
func NewStreamReader(r io.Reader, key, iv []byte) (io.Reader, error) {
	block, err := newSessionBlock(key, iv)
	if err != nil {
		return nil, fmt.Errorf("rtm: stream reader: %w", err)
	}
	return cipher.StreamReader{S: newSessionCFB(block, iv, true), R: r}, nil
}

// NewStreamWriter returns a writer that encrypts everything written to it as
// one continuous AES-CFB stream (stream mode, spec §10.3) and writes it to w;
// use it for every byte after the plaintext *key frame. It does not buffer,
// and after a short or failed write its cipher state no longer matches the
// peer's, so the connection must be closed. key and iv are as for
// [NewStreamReader].
func NewStreamWriter(w io.Writer, key, iv []byte) (io.Writer, error) {
	block, err := newSessionBlock(key, iv)
	if err != nil {
		return nil, fmt.Errorf("rtm: stream writer: %w", err)
	}
	return cipher.StreamWriter{S: newSessionCFB(block, iv, false), W: w}, nil
}
