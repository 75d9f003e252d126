package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// benchOutput collects what tasks write, reusing records.
type benchOutput struct {
	fwd   []*kgo.Record
	n     int
	emits int
}

func (o *benchOutput) Forward(key, value []byte, ts int64) {
	if o.n == len(o.fwd) {
		o.fwd = append(o.fwd, &kgo.Record{})
	}
	r := o.fwd[o.n]
	r.Key, r.Value, r.Timestamp = key, value, time.UnixMilli(ts)
	o.n++
}
func (o *benchOutput) Emit(int, []byte, []byte, int64) { o.emits++ }
func (o *benchOutput) Changelog([]byte, []byte)        {}

// BenchmarkClusterTasks measures the per-record cost of cluster mode's
// tasks without Kafka: decoding a JSON order, the stateless steps, the
// repartition encoding, then the window task decoding the row and
// updating its accumulator (commits every 10,000 records, as a 1 s
// commit interval at 10,000 records/s).
func BenchmarkClusterTasks(b *testing.B) {
	spec, err := Parse("revenue.yaml", fmt.Appendf(nil, clusterSpec, "127.0.0.1:1", "bench", DeliveryExactlyOnce))
	if err != nil {
		b.Fatal(err)
	}
	plan, err := Compile(spec)
	if err != nil {
		b.Fatal(err)
	}
	_, topo, err := plan.ClusterTopology(context.Background(), nil, ClusterOverrides{InstanceID: "x"})
	if err != nil {
		b.Fatal(err)
	}
	src := topo.SubTopologies[0].NewTask(0)
	win := topo.SubTopologies[1].NewTask(0)
	const n = 4096
	recs := make([]*kgo.Record, n)
	for i := range recs {
		r, _, _, _ := order(i)
		recs[i] = r
	}
	out := &benchOutput{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out.n = 0
		if err := src.Process(out, recs[i%n]); err != nil {
			b.Fatal(err)
		}
		for _, r := range out.fwd[:out.n] {
			if err := win.Process(out, r); err != nil {
				b.Fatal(err)
			}
		}
		if i%10000 == 9999 {
			_ = win.Flush(out)
			win.Commit()
		}
	}
}
