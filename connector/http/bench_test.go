package http

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"testing"

	"github.com/sluicehq/sluice/connector"
)

func benchBody(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"user":"u%d","price":12.5,"qty":%d,"status":"paid","ts":1700000000000}`+"\n", i%1000, i%9)
	}
	return b.Bytes()
}

// BenchmarkDecodeBody splits a body of 1000 JSON lines (~75 bytes each).
func BenchmarkDecodeBody(b *testing.B) {
	body := benchBody(1000)
	var dst [][]byte
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for range b.N {
		var err error
		if dst, err = DecodeBody(dst[:0], body); err != nil || len(dst) != 1000 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkIngest posts requests of 1000 JSON lines over one keep-alive
// connection to a source whose split is drained by another goroutine;
// each request is answered once its records are handed over.
func BenchmarkIngest(b *testing.B) {
	s, err := NewSource(Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	sps, err := s.Splits(context.Background(), 1)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		dst := make([]connector.Message, 1024)
		for ctx.Err() == nil {
			sps[0].Read(ctx, dst)
		}
	}()
	defer s.Close()
	body := benchBody(1000)
	url := "http://" + s.Addr() + DefaultPath
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for range b.N {
		res, err := nethttp.Post(url, "application/x-ndjson", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		var buf [256]byte
		n, _ := res.Body.Read(buf[:])
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("%d %s", res.StatusCode, buf[:n])
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
}
