package rtm

// Hooks for the external tests (package rtm_test, which can use rtmsim
// without an import cycle) into unexported parts of the package.

import "testing"

// WithRandMaxForTest makes every back-off delay its upper bound (no
// jitter), so a test can predict the schedule.
func WithRandMaxForTest() SessionOption { return func(o *sessionOptions) { o.randN = randMax } }

// SameSignVectorAnswer returns the error answer of golden vector
// same_sign_retry (its second frame): the gateway's 200006.
func SameSignVectorAnswer(t *testing.T) *Error {
	t.Helper()
	var vec *questVec
	for _, v := range loadVectors[questVec](t, "rtm_quests.json") {
		if v.Name == "same_sign_retry" {
			vec = &v
		}
	}
	if vec == nil || len(vec.Frames) != 3 {
		t.Fatal("vector same_sign_retry not found or not 3 frames")
	}
	f, err := DecodeFrame(unhex(t, vec.Frames[1].FrameHex), 0)
	if err != nil {
		t.Fatal(err)
	}
	return DecodeError(f)
}
