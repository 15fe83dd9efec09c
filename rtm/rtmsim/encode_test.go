package rtmsim

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// vectorDir is where the golden vectors live, relative to this package: the
// repo is /work/main and the shared tree /work/shared.
const vectorDir = "../../../shared/protocol/vectors"

// TestEncodingMatchesVectors re-encodes every push of the golden vectors
// and checks the bytes: EncodingGo against rtm_pushes.json (official Go
// encoder), EncodingCpp against cpp_frames.json (official C++ writer).
func TestEncodingMatchesVectors(t *testing.T) {
	for _, tc := range []struct {
		file string
		enc  Encoding
	}{{"rtm_pushes.json", EncodingGo}, {"cpp_frames.json", EncodingCpp}} {
		raw, err := os.ReadFile(filepath.Join(vectorDir, tc.file))
		if err != nil {
			t.Fatalf("golden vectors: %v (expected at %s relative to rtm/rtmsim)", err, vectorDir)
		}
		type frameVec struct {
			Name       string `json:"name"`
			Method     string `json:"method"`
			FrameHex   string `json:"frame_hex"`
			PayloadHex string `json:"payload_hex"`
		}
		var file struct {
			Vectors []struct {
				frameVec
				Push *frameVec `json:"push"` // rtm_pushes.json nests the frame
			} `json:"vectors"`
		}
		if err := json.Unmarshal(raw, &file); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		checked := 0
		for _, fv := range file.Vectors {
			v := fv.frameVec
			if fv.Push != nil {
				v = *fv.Push
			}
			if !rtm.IsPushMethod([]byte(v.Method)) || v.FrameHex == "" {
				continue
			}
			frame, err := hex.DecodeString(v.FrameHex)
			if err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			f, err := rtm.DecodeFrame(frame, 0)
			if err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			var p rtm.Push
			if err := rtm.DecodePush(f, frame, &p); err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			if got := hex.EncodeToString(pushPayload(&p, tc.enc)); got != v.PayloadHex {
				t.Errorf("%s %s (%s):\n got %s\nwant %s", tc.file, v.Name, tc.enc, got, v.PayloadHex)
			}
			checked++
		}
		if checked < 10 {
			t.Errorf("%s: only %d push vectors checked", tc.file, checked)
		}
		t.Logf("%s: %d push vectors byte-equal with %s", tc.file, checked, tc.enc)
	}
}
