package schema

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"

	"github.com/sluicehq/sluice/internal/avrolimit"
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
	f.Add("AVRO", avrolimit.NestedDefaults(3, 2, false), avrolimit.NestedDefaults(3, 2, true))
	// Protobuf as a base64 FileDescriptorProto, as Confluent's Python
	// serializer registers it.
	if fd, err := CompileProtobuf(map[string]string{"a.proto": "syntax = \"proto3\";\npackage p;\nmessage M { int64 a = 1; map<string, M> m = 2; oneof o { string s = 3; bytes b = 4; } }\n"}, "a.proto"); err == nil {
		if b, err := proto.Marshal(protodesc.ToFileDescriptorProto(fd)); err == nil {
			f.Add("PROTOBUF", base64.StdEncoding.EncodeToString(b), "syntax = \"proto3\";\npackage p;\nmessage M { int64 a = 1; }\n")
		}
	}
	f.Add("AVRO", `{"type":"record","name":"R","fields":[{"name":"id","type":{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}}]}`,
		`{"type":"record","name":"R","fields":[{"name":"ts","type":{"type":"long","logicalType":"timestamp-nanos"},"default":0}]}`)
	f.Fuzz(func(t *testing.T, typ, a, b string) {
		t.Parallel()
		ty, err := parseType(typ)
		if err != nil {
			return
		}
		// The registry's limits come first, as in a registration: the
		// parsers are not handed what they would take too long on.
		var r Registry
		parse := func(text string) (parsed, error) {
			p, err := r.compileResolved(resolved{s: Schema{Type: ty, Text: text}})
			return p.p, err
		}
		pa, errA := parse(a)
		pb, errB := parse(b)
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
