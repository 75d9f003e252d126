package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// TestAvroHostRegistry: the host's registry (`sluice run`'s embedded one)
// serves avro log sources and sinks that name no registry, in the
// Confluent wire format by default; kafka sources and sinks never fall
// back to it and fail to start saying what to set.
func TestAvroHostRegistry(t *testing.T) {
	fake := srfake.New()
	defer fake.Close()
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ss, err := cl.CreateSchema(ctx, "in-value", sr.Schema{Schema: `{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}`, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(ss.Schema.Schema)
	if err != nil {
		t.Fatal(err)
	}
	var values [][]byte
	for i := range 4 {
		var hdr sr.ConfluentHeader
		b, _ := hdr.AppendEncode(nil, ss.ID, nil)
		if b, err = codec.BinaryFromNative(b, map[string]any{"a": int64(i)}); err != nil {
			t.Fatal(err)
		}
		values = append(values, b)
	}
	l := openTestLog(t)
	appendTopic(t, l, "in", 1, values)

	start := func(spec string) (*syncBuf, error) {
		t.Helper()
		s, err := Parse("h.yaml", []byte(spec))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		out := &syncBuf{}
		return out, Run(ctx, p, &Host{Log: l, Stdout: out, Registry: cl})
	}
	out, err := start(`
source: {log: {topic: in, bounded: true}, format: avro}
steps: [{filter: a >= 2}]
sink: {stdout: {}}
`)
	if err != nil || out.String() != "{\"a\":2}\n{\"a\":3}\n" {
		t.Fatalf("log source with the host's registry: %v, printed %q", err, out)
	}

	for _, tc := range []struct{ spec, where string }{
		{`
source: {kafka: {brokers: ["127.0.0.1:1"], topic: in}, format: avro}
steps: [{filter: a >= 2}]
sink: {stdout: {}}
`, "h.yaml:2:9: source:"},
		{`
source: {log: {topic: in, bounded: true}, format: avro}
steps: [{map: {a: a}}]
sink: {kafka: {brokers: ["127.0.0.1:1"], topic: out}, format: avro}
`, "h.yaml:4:7: sink:"},
	} {
		_, err := start(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.where) || !strings.Contains(err.Error(), "add registry: {url: http://HOST:PORT}") {
			t.Errorf("%s: %v, want an error at %s saying to add a registry", tc.spec, err, tc.where)
		}
	}
}
