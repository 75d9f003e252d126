package kcodec

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestParse(t *testing.T) {
	want := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for _, n := range Names {
		got, err := Parse(n)
		if err != nil || got != want[n] {
			t.Errorf("Parse(%q) = %v, %v; want %v", n, got, err, want[n])
		}
	}
	if len(want) != len(Names) {
		t.Errorf("Names %v", Names)
	}
	for _, bad := range []string{"", "ZSTD", "brotli"} {
		if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), "none, gzip, snappy, lz4, zstd") {
			t.Errorf("Parse(%q): %v", bad, err)
		}
	}
}
