package rtm

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Connection defaults; each option's doc names the one it overrides.
const (
	// DefaultDialTimeout bounds Dial: the TCP connect plus sending the
	// plaintext *key quest.
	DefaultDialTimeout = 10 * time.Second
	// DefaultCallTimeout is how long a quest waits for its answer when the
	// caller's context has no deadline. It is shorter than the RTM Go SDK's
	// 30 s: a gateway that takes 10 s to answer setlisten is better redialled.
	DefaultCallTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds one write to the socket; a peer that stops
	// reading for longer kills the connection instead of hanging it.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultKeepaliveInterval is the silence after which a client sends
	// *ping (spec §11).
	DefaultKeepaliveInterval = 10 * time.Second
	// DefaultKeepaliveTimeout is the minimum gap between two *ping quests; a
	// connection is dead after interval + 2×timeout of silence (20 s).
	DefaultKeepaliveTimeout = 5 * time.Second

	// readBufferSize is the size of the bufio.Reader under the frame reader.
	readBufferSize = 64 << 10
	// maxKeptBuffer is the largest read or write buffer kept between frames;
	// a bigger one, grown by an unusual burst or frame, is dropped.
	maxKeptBuffer = 1 << 20
)

// ConnOption configures [Dial] or [Accept].
type ConnOption func(*connConfig)

// connConfig is the resolved configuration of one Conn.
type connConfig struct {
	dialTimeout  time.Duration
	callTimeout  time.Duration
	writeTimeout time.Duration
	keepInterval time.Duration
	keepTimeout  time.Duration
	keepSet      bool
	maxPayload   int
	logger       *slog.Logger

	serverKey  *ServerKey // Dial: encrypt with the gateway's public key
	bits       int
	serverPriv *ServerPrivateKey // Accept: allow encrypted clients
}

// WithDialTimeout bounds Dial's TCP connect and the sending of its *key
// quest; the context's deadline applies too, whichever comes first. Default
// [DefaultDialTimeout]; 0 means the default. Accept ignores it.
func WithDialTimeout(d time.Duration) ConnOption {
	return func(c *connConfig) { c.dialTimeout = d }
}

// WithCallTimeout sets how long [Conn.Call] waits for an answer when its
// context has no deadline, and the *key answer's deadline. Default
// [DefaultCallTimeout]; 0 means the default.
func WithCallTimeout(d time.Duration) ConnOption {
	return func(c *connConfig) { c.callTimeout = d }
}

// WithWriteTimeout bounds each write to the socket: a peer that does not
// read for that long kills the connection. Default [DefaultWriteTimeout]; 0
// means the default.
func WithWriteTimeout(d time.Duration) ConnOption {
	return func(c *connConfig) { c.writeTimeout = d }
}

// WithKeepalive sets the keepalive (spec §11): a *ping is sent after
// interval without receiving anything (and at most one per timeout), and the
// connection dies with [ErrStale] after interval + 2×timeout of silence.
// Time the reader spends blocked in the [QuestHandler] does not count as
// silence. WithKeepalive(0, 0) disables it. Default: 10 s / 5 s for [Dial];
// disabled for [Accept] (a C++ FPNN server does not ping its clients).
func WithKeepalive(interval, timeout time.Duration) ConnOption {
	return func(c *connConfig) { c.keepInterval, c.keepTimeout, c.keepSet = interval, timeout, true }
}

// WithMaxPayload sets the largest payload accepted from the peer (and sent
// by Call, Go and Send); a frame announcing more kills the connection with
// [ErrFrameTooLarge] before anything is allocated for it. Default (and 0):
// [DefaultMaxPayload], 8 MiB.
func WithMaxPayload(n int) ConnOption {
	return func(c *connConfig) { c.maxPayload = n }
}

// WithLogger sets the logger for connection-level debug events (unknown
// answers, the reason a connection died). Default: discard.
func WithLogger(l *slog.Logger) ConnOption {
	return func(c *connConfig) { c.logger = l }
}

// WithEncryption makes [Dial] encrypt the connection (spec §10): ECDH with
// the gateway's public key, then AES-CFB stream mode with a bits-bit key
// (128 or 256; the official Go SDK uses 256). Dial only.
func WithEncryption(key *ServerKey, bits int) ConnOption {
	return func(c *connConfig) { c.serverKey, c.bits = key, bits }
}

// WithServerKey lets [Accept] take encrypted clients: a *key quest as the
// first frame switches the connection to AES-CFB, in stream or package mode
// as the client asks. Without it a *key quest is answered with an error and
// the connection closed. Accept only.
func WithServerKey(priv *ServerPrivateKey) ConnOption {
	return func(c *connConfig) { c.serverPriv = priv }
}

// newConnConfig applies opts over the defaults and validates the result.
func newConnConfig(server bool, opts []ConnOption) (connConfig, error) {
	var c connConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.dialTimeout < 0 || c.callTimeout < 0 || c.writeTimeout < 0 || c.keepInterval < 0 || c.keepTimeout < 0 {
		return c, errors.New("negative timeout")
	}
	if c.maxPayload < 0 {
		return c, fmt.Errorf("negative maximum payload %d", c.maxPayload)
	}
	if c.dialTimeout == 0 {
		c.dialTimeout = DefaultDialTimeout
	}
	if c.callTimeout == 0 {
		c.callTimeout = DefaultCallTimeout
	}
	if c.writeTimeout == 0 {
		c.writeTimeout = DefaultWriteTimeout
	}
	if !c.keepSet && !server {
		c.keepInterval, c.keepTimeout = DefaultKeepaliveInterval, DefaultKeepaliveTimeout
	}
	if (c.keepInterval == 0) != (c.keepTimeout == 0) {
		return c, fmt.Errorf("keepalive interval %s and timeout %s: set both or neither", c.keepInterval, c.keepTimeout)
	}
	if c.maxPayload == 0 {
		c.maxPayload = DefaultMaxPayload
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case server && c.serverKey != nil:
		return c, errors.New("WithEncryption is for Dial; Accept takes WithServerKey")
	case !server && c.serverPriv != nil:
		return c, errors.New("WithServerKey is for Accept; Dial takes WithEncryption")
	case c.serverKey != nil && c.bits != 128 && c.bits != 256:
		return c, fmt.Errorf("encryption bits must be 128 or 256, got %d", c.bits)
	}
	return c, nil
}
