package schema

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The request decoders take bytes from the network: they must never
// panic, and what they accept must be well formed.

func FuzzDecodeSchemaRequest(f *testing.F) {
	for _, s := range []string{
		`{"schema":"\"string\""}`,
		`{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF","references":[{"name":"a.proto","subject":"a","version":1}]}`,
		`{"schema":"{}","schemaType":"json","id":7,"version":-1,"metadata":{"properties":{"a":"b"}}}`,
		`{"schema":null}`, `[]`, `{"references":[{}]}`, ``, `{"schema":"x"} trailing`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, opts, err := decodeSchemaRequest(b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if s.Type != Avro && s.Type != Protobuf && s.Type != JSON {
			t.Fatalf("accepted type %q", s.Type)
		}
		if opts.ID < 0 || opts.Version < 0 {
			t.Fatalf("accepted negative options %+v", opts)
		}
		for _, r := range s.References {
			if r.Name == "" || r.Subject == "" || r.Version == 0 || r.Version < -1 {
				t.Fatalf("accepted reference %+v", r)
			}
		}
	})
}

func FuzzDecodeConfigAndMode(f *testing.F) {
	for _, s := range []string{`{"compatibility":"full"}`, `{"compatibilityLevel":"NONE","normalize":true}`, `{"mode":"IMPORT"}`, `{"mode":1}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := decodeConfigRequest(b); err == nil {
			if _, err := ParseLevel(string(c.Compatibility)); err != nil {
				t.Fatalf("accepted level %q", c.Compatibility)
			}
		}
		if m, err := decodeModeRequest(b); err == nil {
			if _, err := ParseMode(string(m)); err != nil {
				t.Fatalf("accepted mode %q", m)
			}
		}
	})
}

// FuzzSchemaPair compiles two schema texts of one type, as a registration
// does with text from a client, and checks them against each other both
// ways: neither the parsers nor the compatibility rules may panic or loop,
// and a schema always reads itself.
func FuzzSchemaPair(f *testing.F) {
	files, _ := filepath.Glob("testdata/compat/*.txt")
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, c := range strings.Split("\n"+string(raw), "\n=== ")[1:] {
			_, body, _ := strings.Cut(c, "\n")
			text, _, _ := strings.Cut(body, "\n----\n")
			blocks := strings.Split("\n"+text, "\n--- ")[1:]
			for i := 0; i+1 < len(blocks); i++ {
				typ, a, _ := strings.Cut(blocks[i], "\n")
				_, b, _ := strings.Cut(blocks[i+1], "\n")
				f.Add(strings.TrimSpace(typ), a, b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, typ, a, b string) {
		t.Parallel()
		ty, err := parseType(typ)
		if err != nil {
			return
		}
		pa, errA := parseSchema(Schema{Type: ty, Text: a}, nil)
		pb, errB := parseSchema(Schema{Type: ty, Text: b}, nil)
		if errA == nil {
			if msgs := pa.canRead(pa); len(msgs) > 0 {
				t.Fatalf("a schema does not read itself: %v\n%s", msgs, a)
			}
		}
		if errA == nil && errB == nil {
			pa.canRead(pb)
			pb.canRead(pa)
		}
	})
}
