package kafka_test

import (
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/recordbomb"
	"github.com/sluicehq/sluice/record"
)

// TestCompactedProduceRefusesDecompressionBomb: a 32 KiB zstd batch that
// inflates to 256 MiB, produced to a compacted topic (whose keys the
// broker checks by decompressing), is refused with MESSAGE_TOO_LARGE
// (not retriable, so the client does not send it again) having cost the
// broker about twice record.MaxDecompressed at most; before the bound the
// broker inflated it whole (256 MiB, up to 1 GiB allowed). Nothing is
// written, and the partition takes the next batch.
func TestCompactedProduceRefusesDecompressionBomb(t *testing.T) {
	s := startCompactServer(t)
	const topic = "compact-bomb"
	createCompactedKadm(t, s, topic)
	raw := s.Client(t)
	ctx := testCtx(t)
	bomb := recordbomb.Batch(0, 256<<20)
	req := produceReq(topic, bomb, 9)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp, err := req.RequestWith(ctx, raw)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.MessageTooLarge.Code {
		t.Fatalf("%d-byte bomb: error %v, want MESSAGE_TOO_LARGE", len(bomb), kerr.ErrorForCode(code))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2*record.MaxDecompressed+32<<20 {
		t.Fatalf("%d-byte bomb: the broker allocated %d MiB, bound %d MiB", len(bomb), alloc>>20, record.MaxDecompressed>>20)
	}
	p := partitionOf(t, s, topic)
	if _, hw, _ := p.Offsets(); hw != 0 {
		t.Fatalf("high watermark %d after a refused bomb", hw)
	}
	cl := s.Client(t, kgo.DefaultProduceTopic(topic))
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce after the bomb: %v", err)
	}
}
