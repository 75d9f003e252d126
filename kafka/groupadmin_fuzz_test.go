package kafka

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzConsumerGroupBytes feeds arbitrary member metadata and assignments
// (bytes clients send) to the decoders behind OffsetDelete and Groups: they
// must not panic, and what decodes must be sorted and free of duplicates.
func FuzzConsumerGroupBytes(f *testing.F) {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"a", "b"}
	f.Add(meta.AppendTo(nil))
	asg := kmsg.NewConsumerMemberAssignment()
	asg.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "b", Partitions: []int32{2, 0, 2}}, {Topic: "a", Partitions: []int32{1}}, {Topic: "b", Partitions: []int32{1}}}
	f.Add(asg.AppendTo(nil))
	f.Add([]byte{})
	f.Add([]byte{0, 3, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeConsumerSubscription(b)
		parts, err := decodeConsumerAssignment(b)
		if err != nil {
			return
		}
		for i, p := range parts {
			if i > 0 && parts[i-1].Topic >= p.Topic {
				t.Fatalf("topics not sorted and unique: %+v", parts)
			}
			if !slices.IsSorted(p.Partitions) || len(slices.Compact(slices.Clone(p.Partitions))) != len(p.Partitions) {
				t.Fatalf("partitions of %s not sorted and unique: %v", p.Topic, p.Partitions)
			}
		}
		var mi GroupMemberInfo
		mi.decode(b, b)
	})
}

func TestDecodeConsumerAssignmentMerges(t *testing.T) {
	asg := kmsg.NewConsumerMemberAssignment()
	asg.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "b", Partitions: []int32{2, 0, 2}}, {Topic: "a", Partitions: []int32{1}}, {Topic: "b", Partitions: []int32{1}}}
	got, err := decodeConsumerAssignment(asg.AppendTo(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Topic != "a" || got[1].Topic != "b" || !slices.Equal(got[1].Partitions, []int32{0, 1, 2}) {
		t.Fatalf("decoded %+v", got)
	}
	if _, err := decodeConsumerAssignment([]byte{0, 0, 0, 0, 0, 9}); err == nil {
		t.Fatal("truncated assignment decoded")
	}
}
