package rtm

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// vectorDir is where the golden vectors live, relative to this package:
// the repo is /work/main and the shared tree /work/shared.
const vectorDir = "../../shared/protocol/vectors"

// vnode is a typed payload node of the vectors (see vectors/README.md).
type vnode struct {
	Type    string          `json:"type"`
	Wire    string          `json:"wire"`
	Value   json.RawMessage `json:"value"`
	Hex     string          `json:"hex"`
	Items   []vnode         `json:"items"`
	Entries []ventry        `json:"entries"`
}

type ventry struct {
	Key     string `json:"key"`
	KeyNode *vnode `json:"key_node"`
	Value   vnode  `json:"value"`
}

// frameVec is one frame of the vectors.
type frameVec struct {
	Name      string `json:"name"`
	Direction string `json:"direction"`
	Kind      string `json:"kind"`
	Header    struct {
		Magic       string `json:"magic"`
		Version     int    `json:"version"`
		Flag        int    `json:"flag"`
		MType       int    `json:"mtype"`
		SS          int    `json:"ss"`
		PayloadSize int    `json:"payload_size"`
	} `json:"header"`
	Seq         *uint32 `json:"seq"`
	Method      string  `json:"method"`
	Status      int     `json:"status"`
	Encoding    string  `json:"encoding"`
	Payload     *vnode  `json:"payload"`
	PayloadJSON string  `json:"payload_json"`
	PayloadHex  string  `json:"payload_hex"`
	FrameHex    string  `json:"frame_hex"`

	// cpp_frames.json pushes only.
	GoDispatch  []dispatch `json:"official_go_sdk_dispatch"`
	GoAnswerHex string     `json:"official_go_sdk_answer_hex"`
}

type dispatch struct {
	Callback string         `json:"callback"`
	Fields   map[string]any `json:"fields"`
}

type signingVec struct {
	PID           int64       `json:"pid"`
	Secret        string      `json:"secret"`
	Salt          json.Number `json:"salt"`
	Method        string      `json:"method"`
	TS            int64       `json:"ts"`
	SignInputText string      `json:"sign_input_text"`
	Sign          string      `json:"sign"`
}

type questVec struct {
	Name    string      `json:"name"`
	SDKCall string      `json:"sdk_call"`
	Signing *signingVec `json:"signing"`
	Frames  []frameVec  `json:"frames"`
}

type pushVec struct {
	Name           string     `json:"name"`
	Description    string     `json:"description"`
	Push           frameVec   `json:"push"`
	ExpectedAnswer frameVec   `json:"expected_answer"`
	Dispatch       []dispatch `json:"official_sdk_dispatch"`
}

type vectorFile[T any] struct {
	Vectors []T `json:"vectors"`
}

// loadVectors reads one vectors file; a missing file fails the test with the
// path that was tried.
func loadVectors[T any](t testing.TB, name string) []T {
	t.Helper()
	path := filepath.Join(vectorDir, name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden vectors: %v (they are expected at %s relative to rtm/)", err, vectorDir)
	}
	var f vectorFile[T]
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&f); err != nil {
		t.Fatalf("golden vectors %s: %v", path, err)
	}
	if len(f.Vectors) == 0 {
		t.Fatalf("golden vectors %s: no vectors", path)
	}
	return f.Vectors
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in vectors: %v", err)
	}
	return b
}

// allFrameHex returns every frame_hex of the vectors, for fuzz seeds.
func allFrameHex(t testing.TB) [][]byte {
	var out [][]byte
	for _, v := range loadVectors[frameVec](t, "fpnn_frames.json") {
		out = append(out, unhex(t, v.FrameHex))
	}
	for _, v := range loadVectors[frameVec](t, "cpp_frames.json") {
		out = append(out, unhex(t, v.FrameHex))
	}
	for _, v := range loadVectors[questVec](t, "rtm_quests.json") {
		for _, f := range v.Frames {
			out = append(out, unhex(t, f.FrameHex))
		}
	}
	for _, v := range loadVectors[pushVec](t, "rtm_pushes.json") {
		out = append(out, unhex(t, v.Push.FrameHex), unhex(t, v.ExpectedAnswer.FrameHex))
	}
	return out
}

// pushFrames returns every push frame (rtm_pushes.json and cpp_frames.json)
// whose method is a push method.
func pushFrames(t testing.TB) [][]byte {
	var out [][]byte
	for _, v := range loadVectors[pushVec](t, "rtm_pushes.json") {
		if IsPushMethod([]byte(v.Push.Method)) {
			out = append(out, unhex(t, v.Push.FrameHex))
		}
	}
	for _, v := range loadVectors[frameVec](t, "cpp_frames.json") {
		if IsPushMethod([]byte(v.Method)) {
			out = append(out, unhex(t, v.FrameHex))
		}
	}
	return out
}
