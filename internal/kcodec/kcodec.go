// Package kcodec maps Kafka's compression.type names to franz-go's
// producer codecs, for every producer Sluice configures (the Kafka sink,
// the Kafka benchmark's load generator).
package kcodec

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Names are the codec names Parse accepts, Kafka's compression.type values.
var Names = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// Parse returns the franz-go codec of a Kafka compression.type name.
func Parse(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression %q: want one of %s", name, strings.Join(Names, ", "))
}
