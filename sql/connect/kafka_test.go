package connect

import (
	"context"
	"sort"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func kafkaCluster(t *testing.T, partitions int32, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func TestKafkaRoundTrip(t *testing.T) {
	addr := kafkaCluster(t, 3, "rows-json", "rows-csv")
	for _, format := range []string{"json", "csv"} {
		t.Run(format, func(t *testing.T) {
			topic := "rows-" + format
			opts := Options{"connector": "kafka", "topic": topic, "properties.bootstrap.servers": addr, "format": format,
				"scan.startup.mode": "earliest-offset", "scan.bounded.mode": "latest-offset", "key.fields": "id", "key.format": "json"}
			cl, _ := kgo.NewClient(kgo.SeedBrokers(addr))
			defer cl.Close()
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: nil}).FirstErr(); err != nil {
				t.Fatal(err) // a blank record, which the source skips
			}
			sink, err := OpenSink(SinkTable{Name: "out", Columns: allTypesColumns(), Options: opts}, Env{})
			if err != nil {
				t.Fatal(err)
			}
			want := allTypesRows()
			writeAll(t, sink, want)
			cols := append(allTypesColumns(), Column{Name: "off", Type: types.TBigInt, Metadata: "offset"}, Column{Name: "tp", Type: types.TVarchar, Metadata: "topic"})
			src, info, err := OpenSource(SourceTable{Name: "in", Columns: cols, Options: opts}, Env{})
			if err != nil {
				t.Fatal(err)
			}
			if !info.Bounded {
				t.Fatal("scan.bounded.mode latest-offset is bounded")
			}
			got := flatten(readAll(t, src, 1))
			sort.Slice(got, func(i, j int) bool { return got[i].Vals[0].AsInt() < got[j].Vals[0].AsInt() })
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i := range want {
				n := len(want[i].Vals)
				if !equalVals(got[i].Vals[:n], want[i].Vals) || got[i].Vals[n+1] != row.String(topic) || got[i].Vals[n].Kind() != row.KindInt {
					t.Fatalf("row %d:\n got %v\nwant %v", i, got[i].Vals, want[i].Vals)
				}
			}
			// The key is the JSON of the key columns.
			cl2, _ := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			defer cl2.Close()
			keys := map[string]bool{}
			for len(keys) < len(want) {
				cl2.PollFetches(context.Background()).EachRecord(func(r *kgo.Record) {
					if r.Value != nil {
						keys[string(r.Key)] = true
					}
				})
			}
			if !keys[`{"id":1}`] || !keys[`{"id":4}`] {
				t.Fatalf("keys %v", keys)
			}
		})
	}
}

// An updating result into upsert-kafka, read back and materialised by
// key, is the final table of the changelog (the oracle: the same
// changelog applied to a map).
func TestUpsertKafka(t *testing.T) {
	addr := kafkaCluster(t, 2, "agg")
	cols := []Column{col("cat", types.TBigInt), col("region", types.TVarchar), col("total", types.DecimalOf(12, 2))}
	pk := []int{0, 1}
	opts := Options{"connector": "upsert-kafka", "topic": "agg", "properties.bootstrap.servers": addr,
		"key.format": "json", "value.format": "json", "scan.bounded.mode": "latest-offset"}
	sink, err := OpenSink(SinkTable{Name: "out", Columns: cols, Options: opts, PrimaryKey: pk, Updating: true}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	var changes []exec.Change
	final := map[string][]row.Value{}
	apply := func(op exec.Op, cat int64, region string, total int64) {
		v := []row.Value{row.Int(cat), row.String(region), row.Int(total)}
		changes = append(changes, exec.Change{Op: op, Vals: v})
		k := exec.Key(v, pk)
		switch op {
		case exec.Insert, exec.UpdateAfter:
			final[k] = v
		case exec.Delete:
			delete(final, k)
		}
	}
	for i := int64(0); i < 200; i++ {
		cat, region := i%7, []string{"eu", "us", "asia"}[i%3]
		k := exec.Key([]row.Value{row.Int(cat), row.String(region)}, []int{0, 1})
		if old, ok := final[k]; ok {
			apply(exec.UpdateBefore, cat, region, old[2].AsInt())
			if i%11 == 0 {
				apply(exec.Delete, cat, region, old[2].AsInt())
				continue
			}
			apply(exec.UpdateAfter, cat, region, old[2].AsInt()+i)
		} else {
			apply(exec.Insert, cat, region, i*100+5)
		}
	}
	writeAll(t, sink, changes)
	src, info, err := OpenSource(SourceTable{Name: "in", Columns: cols, Options: opts, PrimaryKey: pk}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if !info.Upsert || len(info.Key) != 2 {
		t.Fatalf("info %+v", info)
	}
	got := map[string][]row.Value{}
	for _, c := range flatten(readAll(t, src, 2)) {
		k := exec.Key(c.Vals, pk)
		switch c.Op {
		case exec.UpdateAfter:
			got[k] = c.Vals
		case exec.Delete:
			if c.Vals[2] != (row.Value{}) {
				t.Fatal("a delete carries only the key")
			}
			delete(got, k)
		default:
			t.Fatalf("op %s from an upsert source", c.Op)
		}
	}
	if len(got) != len(final) {
		t.Fatalf("%d keys, want %d", len(got), len(final))
	}
	for k, v := range final {
		if !equalVals(got[k], v) {
			t.Fatalf("key %q: got %v want %v", k, got[k], v)
		}
	}
}
