package stdout

import (
	"bytes"
	"context"
	"testing"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

func TestWritesLines(t *testing.T) {
	var b bytes.Buffer
	s := New(&b)
	w, _ := s.Open(context.Background(), stream.SubtaskInfo{})
	w.Write(context.Background(), []connector.Message{{Value: []byte(`{"a":1}`)}, {Value: []byte("x")}})
	w.Close(context.Background())
	if b.String() != "{\"a\":1}\nx\n" {
		t.Fatalf("%q", b.String())
	}
}
