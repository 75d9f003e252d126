package nexmark

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzUnmarshalEvent feeds arbitrary lines to the decoder: it must never
// panic, and whatever it accepts must survive encode/decode unchanged and
// encode to valid JSON.
func FuzzUnmarshalEvent(f *testing.F) {
	g, err := NewGenerator(DefaultConfig(), 0, 60)
	if err != nil {
		f.Fatal(err)
	}
	var e Event
	for g.Next(&e) {
		f.Add(AppendJSON(nil, &e))
	}
	for _, s := range []string{
		``, `{}`, `null`, `{"event_type":2,"bid":{}}`,
		`{"event_type":0,"person":{"name":"\u00e9\ud834\udd1e\"\\"}}`,
		`{"event_type":1,"auction":{"id":-9223372036854775808,"x":[1,2,{"y":"z"}]}}`,
		`{"event_type":2,"bid":{"price":1e5}}`, "{\"event_type\":2,\"bid\":{\"url\":\"\xff\"}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var first Event
		if err := UnmarshalEvent(data, &first); err != nil {
			return
		}
		enc := AppendJSON(nil, &first)
		if !json.Valid(enc) {
			t.Fatalf("encoded invalid JSON %q", enc)
		}
		var second Event
		if err := UnmarshalEvent(enc, &second); err != nil {
			t.Fatalf("re-decoding %q: %v", enc, err)
		}
		if first != second {
			t.Fatalf("round trip changed %+v into %+v", first, second)
		}
		if enc2 := AppendJSON(nil, &second); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %q vs %q", enc, enc2)
		}
	})
}
