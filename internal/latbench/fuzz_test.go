package latbench

import (
	"testing"
)

// FuzzIntField feeds the receiver's field reader the bytes a pipeline
// under test may write: it must not panic, and a value the benchmark
// wrote must read back exactly.
func FuzzIntField(f *testing.F) {
	f.Add([]byte(`{"seq":1,"sent_ns":123,"pad":"xx"}`), int64(5), int64(-9))
	f.Add([]byte(`{"sent_ns":1.5e3}`), int64(0), int64(0))
	f.Add([]byte(`{"sent_ns"`), int64(1), int64(2))
	f.Add([]byte(`"sent_ns":  `), int64(1<<62), int64(-1<<62))
	f.Fuzz(func(t *testing.T, b []byte, seq, sent int64) {
		intField(b, "seq")
		intField(b, "sent_ns")
		v := appendValue(nil, seq, sent, 100)
		if got, ok := intField(v, "seq"); !ok || got != seq {
			t.Fatalf("seq %d read back as %d, %v from %s", seq, got, ok, v)
		}
		if got, ok := intField(v, "sent_ns"); !ok || got != sent {
			t.Fatalf("sent_ns %d read back as %d, %v from %s", sent, got, ok, v)
		}
	})
}
