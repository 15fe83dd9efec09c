package rtm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame header constants (spec §2).
const (
	// HeaderSize is the fixed size of an FPNN frame header.
	HeaderSize = 12
	// FlagJSON marks a JSON payload.
	FlagJSON byte = 0x40
	// FlagMsgpack marks a msgpack payload.
	FlagMsgpack byte = 0x80

	// flagZip and flagEncrypt exist in FPNN but are not used on TCP (spec
	// §2); a push carrying either is undecodable (dead-lettered, raw kept).
	flagZip     byte = 0x20
	flagEncrypt byte = 0x10
	// DefaultMaxPayload is the payload limit used when none is configured:
	// the C++ FPNN framework's default maximum package length.
	DefaultMaxPayload = 8 << 20

	frameVersion = 1
	magic        = "FPNN"
)

// MsgType is the FPNN message type carried in header byte 6.
type MsgType uint8

// The three FPNN message types.
const (
	OneWay MsgType = 0 // a quest that must not be answered
	TwoWay MsgType = 1 // a quest that expects exactly one answer
	Answer MsgType = 2 // the answer to a two-way quest
)

// String names the message type.
func (t MsgType) String() string {
	switch t {
	case OneWay:
		return "one-way quest"
	case TwoWay:
		return "two-way quest"
	case Answer:
		return "answer"
	}
	return fmt.Sprintf("mtype %d", uint8(t))
}

// ErrFrameTooLarge is returned when a frame announces a payload above the
// reader's maximum; nothing of the payload has been read or allocated.
var ErrFrameTooLarge = errors.New("rtm: frame payload exceeds the maximum")

// FrameError describes a header field that violates the protocol.
type FrameError struct {
	Field string // "magic", "flag", "mtype", "ss" or "payload_size"
	Got   uint64 // the offending value (for magic: the 4 bytes, big-endian)
}

func (e *FrameError) Error() string {
	switch e.Field {
	case "magic":
		return fmt.Sprintf("rtm: bad frame magic %#08x, want \"FPNN\"", e.Got)
	case "flag":
		return fmt.Sprintf("rtm: bad frame flag %#02x: exactly one of msgpack (0x80) and json (0x40) must be set", e.Got)
	case "mtype":
		return fmt.Sprintf("rtm: bad frame mtype %d: want 0, 1 or 2", e.Got)
	case "ss":
		return fmt.Sprintf("rtm: bad frame method length %d: quests need 1..255", e.Got)
	}
	return fmt.Sprintf("rtm: bad frame %s %d", e.Field, e.Got)
}

// Frame is one decoded FPNN frame. Method and Payload alias the reader's
// buffer when the frame came from a [FrameReader]: they are valid until the
// next call to [FrameReader.Next].
type Frame struct {
	Flag    byte    // FlagMsgpack or FlagJSON
	Type    MsgType // OneWay, TwoWay or Answer
	Status  byte    // answers only: 0 ok, non-zero error
	Seq     uint32  // two-way quests and answers
	Method  []byte  // quests only
	Payload []byte  // the msgpack or JSON payload
}

// IsError reports whether f is an error answer.
func (f *Frame) IsError() bool { return f.Type == Answer && f.Status != 0 }

// Size is the number of bytes f occupies on the wire.
func (f *Frame) Size() int {
	n := HeaderSize + len(f.Payload)
	if f.Type != OneWay {
		n += 4
	}
	if f.Type != Answer {
		n += len(f.Method)
	}
	return n
}

// Header is the decoded fixed part of a frame.
type Header struct {
	Version     byte
	Flag        byte
	Type        MsgType
	SS          byte // method length for quests, status for answers
	PayloadSize uint32
}

// ParseHeader checks the 12 header bytes and returns them decoded. A
// maxPayload of 0 means DefaultMaxPayload.
func ParseHeader(b []byte, maxPayload int) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("rtm: short frame header: %d bytes", len(b))
	}
	if string(b[0:4]) != magic {
		return Header{}, &FrameError{Field: "magic", Got: uint64(binary.BigEndian.Uint32(b[0:4]))}
	}
	h := Header{Version: b[4], Flag: b[5], Type: MsgType(b[6]), SS: b[7], PayloadSize: binary.LittleEndian.Uint32(b[8:12])}
	if f := h.Flag & (FlagMsgpack | FlagJSON); f != FlagMsgpack && f != FlagJSON {
		return Header{}, &FrameError{Field: "flag", Got: uint64(h.Flag)}
	}
	if h.Type > Answer {
		return Header{}, &FrameError{Field: "mtype", Got: uint64(h.Type)}
	}
	if h.Type != Answer && h.SS == 0 {
		return Header{}, &FrameError{Field: "ss", Got: 0}
	}
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	if uint64(h.PayloadSize) > uint64(maxPayload) {
		return Header{}, fmt.Errorf("%w: %d bytes announced, limit %d", ErrFrameTooLarge, h.PayloadSize, maxPayload)
	}
	return h, nil
}

// BodySize is the number of bytes that follow the header.
func (h Header) BodySize() int {
	n := int(h.PayloadSize)
	if h.Type != OneWay {
		n += 4
	}
	if h.Type != Answer {
		n += int(h.SS)
	}
	return n
}

// FrameReader reads frames from a stream, reusing one buffer. It checks each
// header before it reads or allocates anything for the body.
type FrameReader struct {
	r          io.Reader
	maxPayload int
	buf        []byte
	frame      Frame
}

// NewFrameReader returns a reader of frames from r whose payloads may be at
// most maxPayload bytes (0 means DefaultMaxPayload). Wrap r in a bufio.Reader
// for efficiency.
func NewFrameReader(r io.Reader, maxPayload int) *FrameReader {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	return &FrameReader{r: r, maxPayload: maxPayload, buf: make([]byte, 4096)}
}

// Next reads the next frame. The frame and the slices in it are valid until
// the next call. Raw returns the whole frame's bytes for the same lifetime.
// On a clean end of stream before any header byte, Next returns io.EOF.
func (fr *FrameReader) Next() (*Frame, error) {
	if _, err := io.ReadFull(fr.r, fr.buf[:HeaderSize]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("rtm: read frame header: %w", err)
		}
		return nil, err
	}
	h, err := ParseHeader(fr.buf[:HeaderSize], fr.maxPayload)
	if err != nil {
		return nil, err
	}
	total := HeaderSize + h.BodySize()
	if cap(fr.buf) < total {
		nb := make([]byte, total)
		copy(nb, fr.buf[:HeaderSize])
		fr.buf = nb
	}
	fr.buf = fr.buf[:total]
	if _, err := io.ReadFull(fr.r, fr.buf[HeaderSize:total]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("rtm: read frame body (%d bytes): %w", total-HeaderSize, err)
	}
	decodeBody(&fr.frame, h, fr.buf[HeaderSize:total])
	return &fr.frame, nil
}

// Raw returns the bytes of the frame last returned by Next, header included.
// They are valid until the next call to Next.
func (fr *FrameReader) Raw() []byte { return fr.buf }

// Shrink drops a buffer grown beyond limit bytes by an unusually large
// frame, so that one big frame does not pin memory for the connection's life.
func (fr *FrameReader) Shrink(limit int) {
	if cap(fr.buf) > limit {
		fr.buf = make([]byte, 4096)
	}
}

func decodeBody(f *Frame, h Header, body []byte) {
	*f = Frame{Flag: h.Flag & (FlagMsgpack | FlagJSON), Type: h.Type}
	if h.Type != OneWay {
		f.Seq = binary.LittleEndian.Uint32(body[0:4])
		body = body[4:]
	}
	if h.Type == Answer {
		f.Status = h.SS
	} else {
		f.Method = body[:h.SS]
		body = body[h.SS:]
	}
	f.Payload = body
}

// DecodeFrame decodes exactly one whole frame held in b. The returned frame
// aliases b.
func DecodeFrame(b []byte, maxPayload int) (*Frame, error) {
	h, err := ParseHeader(b, maxPayload)
	if err != nil {
		return nil, err
	}
	if want := HeaderSize + h.BodySize(); len(b) != want {
		return nil, fmt.Errorf("rtm: frame is %d bytes, header announces %d", len(b), want)
	}
	f := new(Frame)
	decodeBody(f, h, b[HeaderSize:])
	return f, nil
}

// AppendFrame appends f's wire encoding to dst. The method of a quest must be
// 1..255 bytes; AppendFrame panics otherwise, as that is a programming error.
func AppendFrame(dst []byte, f *Frame) []byte {
	ss := f.Status
	if f.Type != Answer {
		if len(f.Method) == 0 || len(f.Method) > 255 {
			panic(fmt.Sprintf("rtm: AppendFrame: method length %d out of 1..255", len(f.Method)))
		}
		ss = byte(len(f.Method))
	}
	flag := f.Flag
	if flag == 0 {
		flag = FlagMsgpack
	}
	dst = append(dst, magic...)
	dst = append(dst, frameVersion, flag, byte(f.Type), ss)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(f.Payload)))
	if f.Type != OneWay {
		dst = binary.LittleEndian.AppendUint32(dst, f.Seq)
	}
	if f.Type != Answer {
		dst = append(dst, f.Method...)
	}
	return append(dst, f.Payload...)
}

// BeginFrame appends a frame header and the seq/method part of the body to
// dst, with payload_size 0, and returns the extended slice together with the
// offset at which the payload starts. Append the payload, then call
// FinishFrame to patch the size. This lets encoders write the payload
// straight into the output buffer.
func BeginFrame(dst []byte, flag byte, t MsgType, status byte, seq uint32, method string) ([]byte, int) {
	ss := status
	if t != Answer {
		ss = byte(len(method))
	}
	if flag == 0 {
		flag = FlagMsgpack
	}
	dst = append(dst, magic...)
	dst = append(dst, frameVersion, flag, byte(t), ss, 0, 0, 0, 0)
	if t != OneWay {
		dst = binary.LittleEndian.AppendUint32(dst, seq)
	}
	if t != Answer {
		dst = append(dst, method...)
	}
	return dst, len(dst)
}

// FinishFrame patches the payload size of the frame whose payload starts at
// payloadStart (as returned by BeginFrame) and whose header starts at
// frameStart.
func FinishFrame(dst []byte, frameStart, payloadStart int) []byte {
	binary.LittleEndian.PutUint32(dst[frameStart+8:frameStart+12], uint32(len(dst)-payloadStart))
	return dst
}
