package nexmark

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// TestGolden pins the first 20 events of the default configuration, so any
// change to the generator or the encoder shows up in review.
func TestGolden(t *testing.T) {
	got := generateBytes(t, DefaultConfig(), 0, 20)
	path := filepath.Join("testdata", "first20.jsonl")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("first 20 events differ from %s (go test -update rewrites it):\n%s", path, got)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	g, err := NewGenerator(cfg, 0, 20_000)
	if err != nil {
		t.Fatal(err)
	}
	var e, back Event
	var buf []byte
	for g.Next(&e) {
		buf = AppendJSON(buf[:0], &e)
		if err := UnmarshalEvent(buf, &back); err != nil {
			t.Fatalf("%s: %v", buf, err)
		}
		if back != e {
			t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", back, e)
		}
	}
}

func TestDecoderReadsGenerateOutput(t *testing.T) {
	cfg := DefaultConfig()
	var w bytes.Buffer
	if err := GenerateJSON(context.Background(), &w, cfg, 5000); err != nil {
		t.Fatal(err)
	}
	// Blank lines are skipped.
	in := strings.Replace(w.String(), "\n", "\n\n", 3)
	d := NewDecoder(strings.NewReader(in))
	g, _ := NewGenerator(cfg, 0, 5000)
	var want, got Event
	for g.Next(&want) {
		if err := d.Decode(&got); err != nil {
			t.Fatalf("event %d: %v", g.Position()-1, err)
		}
		if got != want {
			t.Fatalf("event %d decoded as %+v, want %+v", g.Position()-1, got, want)
		}
	}
	if err := d.Decode(&got); err != io.EOF {
		t.Fatalf("after the last event: %v, want io.EOF", err)
	}
}

// TestJSONShape checks the encoding against encoding/json: valid JSON with
// exactly the reference's keys.
func TestJSONShape(t *testing.T) {
	wantKeys := map[string][]string{
		"person":  {"id", "name", "emailAddress", "creditCard", "city", "state", "dateTime", "extra"},
		"auction": {"id", "itemName", "description", "initialBid", "reserve", "dateTime", "expires", "seller", "category", "extra"},
		"bid":     {"auction", "bidder", "price", "channel", "url", "dateTime", "extra"},
	}
	g, _ := NewGenerator(DefaultConfig(), 0, 200)
	var e Event
	for g.Next(&e) {
		line := AppendJSON(nil, &e)
		var top map[string]json.RawMessage
		if err := json.Unmarshal(line, &top); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if len(top) != 4 || string(top["event_type"]) != string(rune('0'+e.Type)) {
			t.Fatalf("top level %s", line)
		}
		for name, keys := range wantKeys {
			raw := top[name]
			if name != e.Type.String() {
				if string(raw) != "null" {
					t.Fatalf("%s: %s is %s, want null", line, name, raw)
				}
				continue
			}
			var rec map[string]json.RawMessage
			if err := json.Unmarshal(raw, &rec); err != nil {
				t.Fatal(err)
			}
			if len(rec) != len(keys) {
				t.Fatalf("%s has %d keys, want %v", name, len(rec), keys)
			}
			for _, k := range keys {
				if _, ok := rec[k]; !ok {
					t.Fatalf("%s lacks key %s", name, k)
				}
			}
		}
	}
}

func TestJSONStringEscapes(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "tab\tnew\nline\r", "\x00\x01\x1f", "héllo ✓ 𝄞", "bad\xffutf8", "\u2028"} {
		enc := AppendJSONString(nil, s)
		var viaStd string
		if err := json.Unmarshal(enc, &viaStd); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, enc, err)
		}
		p := parser{data: enc}
		got, err := p.string()
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if got != viaStd {
			t.Fatalf("%q decoded as %q, encoding/json says %q", s, got, viaStd)
		}
		if !strings.Contains(s, "\xff") && got != s {
			t.Fatalf("%q round-tripped to %q", s, got)
		}
	}
	// Escapes the encoder never writes, and surrogate pairs.
	p := parser{data: []byte(`"\/\b\f\u00e9\ud834\udd1e\ud800x\udc00"`)}
	got, err := p.string()
	if err != nil {
		t.Fatal(err)
	}
	if want := "/\b\fé𝄞\ufffdx\ufffd"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ``},
		{"not an object", `[1]`},
		{"missing type", `{"person":null,"auction":null,"bid":null}`},
		{"bad type", `{"event_type":3,"person":null,"auction":null,"bid":null}`},
		{"type without record", `{"event_type":2,"person":null,"auction":null,"bid":null}`},
		{"two records", `{"event_type":2,"person":{"id":1},"bid":{"auction":1}}`},
		{"float", `{"event_type":2,"bid":{"price":1.5}}`},
		{"string for int", `{"event_type":2,"bid":{"price":"1"}}`},
		{"overflow", `{"event_type":2,"bid":{"price":9223372036854775808}}`},
		{"leading zero", `{"event_type":2,"bid":{"price":01}}`},
		{"trailing garbage", `{"event_type":2,"bid":{}} x`},
		{"unterminated", `{"event_type":2,"bid":{"channel":"abc`},
		{"control char", "{\"event_type\":2,\"bid\":{\"channel\":\"a\x01\"}}"},
		{"bad escape", `{"event_type":2,"bid":{"channel":"\q"}}`},
		{"deep", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`},
		{"missing comma", `{"event_type":2 "bid":{}}`},
	} {
		var e Event
		err := UnmarshalEvent([]byte(tc.in), &e)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: error %v, want a *SyntaxError", tc.name, err)
		}
	}
	// Accepted: any key order, unknown keys, whitespace, missing fields,
	// extreme integers.
	in := ` { "bid" : { "extra":"x", "ignored":[1,{"a":null},true,-2.5e3], "price":-9223372036854775808 } , "event_type" : 2, "person":null } `
	var e Event
	if err := UnmarshalEvent([]byte(in), &e); err != nil {
		t.Fatal(err)
	}
	if e.Type != EventBid || e.Bid.Extra != "x" || e.Bid.Price != -9223372036854775808 {
		t.Fatalf("decoded %+v", e)
	}
}

func TestDecoderReportsLine(t *testing.T) {
	d := NewDecoder(strings.NewReader("{\"event_type\":2,\"bid\":{}}\n\n{bad}\n"))
	var e Event
	if err := d.Decode(&e); err != nil {
		t.Fatal(err)
	}
	err := d.Decode(&e)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 3 {
		t.Fatalf("error %v, want a *SyntaxError on line 3", err)
	}
}

func TestGenerateJSONStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := GenerateJSON(ctx, io.Discard, DefaultConfig(), 1_000_000)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

type failWriter struct{}

var errWrite = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestGenerateJSONWriteError(t *testing.T) {
	if err := GenerateJSON(context.Background(), failWriter{}, DefaultConfig(), 10); !errors.Is(err, errWrite) {
		t.Fatalf("error %v, want the writer's", err)
	}
}

func TestLineParser(t *testing.T) {
	lp := NewLineParser()
	g, _ := NewGenerator(DefaultConfig(), 0, 500)
	var want, got Event
	for g.Next(&want) {
		line := AppendJSON(nil, &want)
		if err := lp.Parse(line, &got); err != nil {
			t.Fatal(err)
		}
		clear(line) // decoded strings must not alias the input
		if got != want {
			t.Fatalf("parsed %+v, want %+v", got, want)
		}
	}
	if err := lp.Parse([]byte(`{"event_type":9}`), &got); err == nil {
		t.Fatal("Parse accepted event_type 9")
	}
}

// appendJSONStringRef is AppendJSONString one byte at a time, the oracle
// of the word-at-a-time fast path.
func appendJSONStringRef(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, '"')
}

// TestAppendJSONStringMatchesBytewise compares the fast path with the
// byte-at-a-time oracle on random strings: mostly letters (long clean
// runs), with escapes, control bytes, valid and broken UTF-8 mixed in.
func TestAppendJSONStringMatchesBytewise(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	special := []string{"\"", "\\", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "€", "😀", "\xff", "\xe2\x82", "`", "H", " "}
	for n := range 20000 {
		var b []byte
		for range r.IntN(40) {
			if r.IntN(4) == 0 {
				b = append(b, special[r.IntN(len(special))]...)
			} else {
				b = append(b, byte('a'+r.IntN(26)))
			}
		}
		if n%10 == 0 {
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
		}
		s := string(b)
		got, want := AppendJSONString([]byte("x"), s), appendJSONStringRef([]byte("x"), s)
		if string(got) != string(want) {
			t.Fatalf("AppendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

// TestNeedsEscape8 checks the word test against its definition byte by
// byte, on random words and on every byte value in every position.
func TestNeedsEscape8(t *testing.T) {
	check := func(x uint64) {
		want := false
		for i := range 8 {
			c := byte(x >> (8 * i))
			want = want || c < 0x20 || c == '"' || c == '\\' || c >= 0x80
		}
		if got := needsEscape8(x); got != want {
			t.Fatalf("needsEscape8(%#x) = %v, want %v", x, got, want)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 200000 {
		check(r.Uint64())
		check(r.Uint64() & 0x7f7f7f7f7f7f7f7f)
	}
	const clean = 0x6161616161616161 // "aaaaaaaa"
	for pos := range 8 {
		for c := range 256 {
			check(clean&^(0xff<<(8*pos)) | uint64(c)<<(8*pos))
			check(0x2020202020202020&^(0xff<<(8*pos)) | uint64(c)<<(8*pos))
		}
	}
}
