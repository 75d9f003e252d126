package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// probe is one interaction whose observable answer (error codes, offsets)
// is compared between Sluice and kfake, franz-go's independent in-memory
// Kafka.
type probe struct {
	name string
	run  func(ctx context.Context, cl *kgo.Client) string
	// want, when set, is Sluice's expected answer where kfake departs from
	// Apache Kafka (the reason is in the comment at the probe).
	want string
}

func codeStr(code int16) string {
	if code == 0 {
		return "OK"
	}
	return kerr.ErrorForCode(code).(*kerr.Error).Message
}

func diffProbes() []probe {
	return []probe{
		{name: "produce to a missing topic", run: func(ctx context.Context, cl *kgo.Client) string {
			return errString(cl.ProduceSync(ctx, &kgo.Record{Topic: "missing", Value: []byte("x")}).FirstErr())
		}},
		{name: "list offsets earliest and latest", run: func(ctx context.Context, cl *kgo.Client) string {
			var out []string
			for _, ts := range []int64{-2, -1} {
				req := kmsg.NewPtrListOffsetsRequest()
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = "diff"
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Timestamp = ts
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				resp, err := req.RequestWith(ctx, cl)
				if err != nil {
					return err.Error()
				}
				p := resp.Topics[0].Partitions[0]
				out = append(out, fmt.Sprintf("%s@%d", codeStr(p.ErrorCode), p.Offset))
			}
			return strings.Join(out, " ")
		}},
		{name: "fetch past the end", run: func(ctx context.Context, cl *kgo.Client) string {
			req := kmsg.NewPtrFetchRequest()
			req.MaxBytes = 1 << 20
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic = "diff"
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.FetchOffset = 100
			fp.PartitionMaxBytes = 1 << 20
			ft.Partitions = append(ft.Partitions, fp)
			req.Topics = append(req.Topics, ft)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return err.Error()
			}
			p := resp.Topics[0].Partitions[0]
			return fmt.Sprintf("%s hwm=%d", codeStr(p.ErrorCode), p.HighWatermark)
		}},
		// Apache Kafka's classic coordinator answers offset -1 without error
		// for a group it does not know; kfake answers GROUP_ID_NOT_FOUND.
		{name: "offset fetch of an unknown group", want: "OK@-1", run: func(ctx context.Context, cl *kgo.Client) string {
			req := kmsg.NewPtrOffsetFetchRequest()
			g := kmsg.NewOffsetFetchRequestGroup()
			g.Group = "nobody"
			gt := kmsg.NewOffsetFetchRequestGroupTopic()
			gt.Topic = "diff"
			gt.Partitions = []int32{0}
			g.Topics = append(g.Topics, gt)
			req.Groups = append(req.Groups, g)
			req.Group = "nobody"
			rt := kmsg.NewOffsetFetchRequestTopic()
			rt.Topic = "diff"
			rt.Partitions = []int32{0}
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return err.Error()
			}
			if len(resp.Groups) > 0 {
				g := resp.Groups[0]
				if len(g.Topics) == 0 {
					return fmt.Sprintf("group %s, no topics", codeStr(g.ErrorCode))
				}
				p := g.Topics[0].Partitions[0]
				return fmt.Sprintf("%s@%d", codeStr(p.ErrorCode), p.Offset)
			}
			p := resp.Topics[0].Partitions[0]
			return fmt.Sprintf("%s@%d", codeStr(p.ErrorCode), p.Offset)
		}},
		{name: "join without a member id", run: func(ctx context.Context, cl *kgo.Client) string {
			req := kmsg.NewPtrJoinGroupRequest()
			req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = "jg", "consumer", 10000, 10000
			req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0}}}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return err.Error()
			}
			return fmt.Sprintf("%s id-given=%v", codeStr(resp.ErrorCode), resp.MemberID != "")
		}},
		{name: "heartbeat of an unknown member", run: func(ctx context.Context, cl *kgo.Client) string {
			req := kmsg.NewPtrHeartbeatRequest()
			req.Group, req.MemberID, req.Generation = "jg", "ghost", 1
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return err.Error()
			}
			return codeStr(resp.ErrorCode)
		}},
		{name: "create an existing topic", run: func(ctx context.Context, cl *kgo.Client) string {
			req := kmsg.NewPtrCreateTopicsRequest()
			ct := kmsg.NewCreateTopicsRequestTopic()
			ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "diff", 1, 1
			req.Topics = append(req.Topics, ct)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return err.Error()
			}
			return codeStr(resp.Topics[0].ErrorCode)
		}},
		{name: "delete a missing topic", run: func(ctx context.Context, cl *kgo.Client) string {
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.TopicNames = []string{"nope"}
			dt := kmsg.NewDeleteTopicsRequestTopic()
			dt.Topic = kmsg.StringPtr("nope")
			req.Topics = append(req.Topics, dt)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return err.Error()
			}
			return codeStr(resp.Topics[0].ErrorCode)
		}},
		{name: "end an unknown transaction", run: func(ctx context.Context, cl *kgo.Client) string {
			req := kmsg.NewPtrEndTxnRequest()
			req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = "ghost-tx", 12345, 0, true
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return err.Error()
			}
			return codeStr(resp.ErrorCode)
		}},
	}
}

func errString(err error) string {
	if err == nil {
		return "OK"
	}
	var ke *kerr.Error
	if errorsAs(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

// TestDifferentialAgainstKfake runs the same probes against Sluice and kfake
// and requires the same answers. Both are spoken to with Kafka 3.0's API
// versions, so version-dependent behaviour (topic ids in Fetch 13+, group
// errors in OffsetFetch 9+) does not differ by negotiation.
func TestDifferentialAgainstKfake(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "diff"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	s := kafkatest.Start(t, kafkatest.Options{})
	createTopic(t, s, "diff", 1)

	answers := map[string][]string{}
	for _, target := range []struct {
		name  string
		addrs []string
	}{{"kfake", fake.ListenAddrs()}, {"sluice", []string{s.Addr}}} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(target.addrs...), kgo.RecordRetries(1), kgo.UnknownTopicRetries(0),
			kgo.MaxVersions(kversion.V3_0_0())) // the same versions on both sides
		if err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t)
		var recs []*kgo.Record
		for range 3 {
			recs = append(recs, &kgo.Record{Topic: "diff", Value: []byte("v")})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("%s: seed produce: %v", target.name, err)
		}
		for _, p := range diffProbes() {
			answers[p.name] = append(answers[p.name], p.run(ctx, cl))
		}
		cl.Close()
	}
	for _, p := range diffProbes() {
		a := answers[p.name]
		switch {
		case p.want != "" && a[1] != p.want:
			t.Errorf("%s: sluice %q, want %q", p.name, a[1], p.want)
		case p.want == "" && a[0] != a[1]:
			t.Errorf("%s: kfake %q, sluice %q", p.name, a[0], a[1])
		}
	}
}

func errorsAs(err error, target **kerr.Error) bool { return errors.As(err, target) }
