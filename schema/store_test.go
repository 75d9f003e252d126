package schema

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluicehq/sluice/internal/kvtopic"
	"github.com/sluicehq/sluice/logstore"
)

func countRecords(t *testing.T, l *logstore.Log) int {
	t.Helper()
	kv, err := kvtopic.Open(l, SchemasTopic)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := kv.Replay(context.Background(), func(_, _ []byte) { n++ }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCompactedTopicReplaysToTheSameState compacts _schemas (small
// segments, the cleaner forced) after a history of registrations,
// deletions and config changes in which a referenced version's record ends
// up after the record that refers to it, and checks the registry reopens
// to the same state, ids and identities included.
func TestCompactedTopicReplaysToTheSameState(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	zero := time.Duration(0)
	if _, err := tr.log.AlterTopicConfig(SchemasTopic, false, func(c *logstore.TopicConfig) error {
		c.SegmentBytes = 4096
		c.DeleteRetention = &zero
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cl := tr.cl
	cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone})
	addr := `{"type":"record","name":"Address","namespace":"shop","fields":[{"name":"city","type":"string"}]}`
	order := `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"to","type":"shop.Address"}]}`
	refs := []sr.SchemaReference{{Name: "shop.Address", Subject: "address", Version: 1}}
	must[int](t)(cl.RegisterSchema(ctx, "address", sr.Schema{Schema: addr}, -1, -1))
	orderID := must[int](t)(cl.RegisterSchema(ctx, "order", sr.Schema{Schema: order, References: refs}, -1, -1))
	// Soft-delete the referring version, then the referenced one: the
	// referenced version's record now comes after the referring one's.
	if err := cl.DeleteSchema(ctx, "order", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if err := cl.DeleteSchema(ctx, "address", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		cl.SetCompatibility(ctx, sr.SetCompatibility{Level: []sr.CompatibilityLevel{sr.CompatFull, sr.CompatNone}[i%2]}, "order")
		must[int](t)(cl.RegisterSchema(ctx, fmt.Sprintf("fill-%d", i%5), sr.Schema{Schema: fmt.Sprintf(`{"type":"enum","name":"E","symbols":["A%d"]}`, i)}, -1, -1))
	}
	if _, err := cl.DeleteSubject(ctx, "fill-0", sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeleteSubject(ctx, "fill-0", sr.HardDelete); err != nil {
		t.Fatal(err)
	}
	cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "extra") // to roll the segment holding the last changes
	before := tr.reg.AllSchemas("", true, false)
	recordsBefore := countRecords(t, tr.log)

	topic, err := tr.log.Topic(SchemasTopic)
	if err != nil {
		t.Fatal(err)
	}
	p, err := topic.Partition(0)
	if err != nil {
		t.Fatal(err)
	}
	if ran, err := p.Compact(time.Now().Add(time.Hour), true); err != nil || !ran {
		t.Fatalf("compaction ran %v: %v", ran, err)
	}
	if after := countRecords(t, tr.log); after >= recordsBefore {
		t.Fatalf("compaction left %d of %d records", after, recordsBefore)
	}

	tr.restart()
	after := tr.reg.AllSchemas("", true, false)
	if len(after) != len(before) {
		t.Fatalf("%d versions after compaction and restart, %d before", len(after), len(before))
	}
	for i := range before {
		b, a := before[i], after[i]
		if b.Subject != a.Subject || b.Version != a.Version || b.ID != a.ID || b.Deleted != a.Deleted || b.Text != a.Text {
			t.Fatalf("version %d: %+v after, %+v before", i, a, b)
		}
	}
	if r := tr.cl.Compatibility(ctx, "order"); r[0].Level != sr.CompatNone {
		t.Fatalf("config after compaction: %+v", r[0])
	}
	// The referring schema still compiles (its reference is resolved after
	// the whole topic is read) and keeps its identity.
	if err := tr.cl.DeleteSchema(ctx, "address", 1, sr.HardDelete); err == nil {
		t.Fatal("hard delete of a version a soft-deleted schema refers to was allowed")
	}
	got := must[sr.SubjectSchema](t)(tr.cl.LookupSchema(sr.WithParams(ctx, sr.ShowDeleted), "order", sr.Schema{Schema: order, References: refs}))
	if got.ID != orderID {
		t.Fatalf("lookup after compaction: %+v", got)
	}
	if subs := must[[]string](t)(tr.cl.Subjects(sr.WithParams(ctx, sr.ShowDeleted))); slices.Contains(subs, "fill-0") {
		t.Fatalf("a hard-deleted subject is back: %v", subs)
	}
}

// TestUnreadableRecordsAreSkipped: _schemas is a topic Kafka clients can
// write to; records the registry cannot read do not stop it from opening.
func TestUnreadableRecordsAreSkipped(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	id := must[int](t)(tr.cl.RegisterSchema(ctx, "s", sr.Schema{Schema: orderV1}, -1, -1))
	kv, err := kvtopic.Open(tr.log, SchemasTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []kvtopic.Entry{
		{Key: []byte("garbage"), Value: []byte("x")},
		{Key: versionKey("s", 9), Value: []byte("{not json")},
		{Key: versionKey("t", 1), Value: []byte(`{"subject":"other","version":1,"id":3,"schema":"\"int\""}`)},
		{Key: configKey("s"), Value: []byte(`{"compatibilityLevel":"SIDEWAYS"}`)},
		{Key: versionKey("u", 1), Value: []byte(`{"subject":"u","version":1,"id":4,"schema":"{\"type\":"}`)}, // does not compile
	} {
		if err := kv.Put(ctx, e.Key, e.Value); err != nil {
			t.Fatal(err)
		}
	}
	tr.restart()
	if s := must[sr.Schema](t)(tr.cl.SchemaByID(ctx, id)); s.Schema != orderV1 {
		t.Fatalf("schema after skipped records: %+v", s)
	}
	if vs := must[[]int](t)(tr.cl.SubjectVersions(ctx, "s")); !slices.Equal(vs, []int{1}) {
		t.Fatalf("versions %v", vs)
	}
	// A schema stored by someone else that does not compile is readable,
	// but a registration checked against it fails with a store error.
	if s := must[sr.Schema](t)(tr.cl.SchemaByID(ctx, 4)); s.Schema != `{"type":` {
		t.Fatalf("uncompilable stored schema %+v", s)
	}
	_, err = tr.cl.RegisterSchema(ctx, "u", sr.Schema{Schema: `"int"`}, -1, -1)
	wantCode(t, err, CodeStoreError)
}
