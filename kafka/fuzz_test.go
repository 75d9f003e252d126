package kafka

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// seedRequests returns a valid request frame body (no size prefix) for
// every served API, at its highest and lowest served versions.
func seedRequests(tb testing.TB) [][]byte {
	batch, err := record.AppendBatch(nil, []record.Record{{Key: []byte("k"), Value: []byte("v"), Timestamp: 1}}, record.BatchOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	for _, a := range supportedAPIs {
		for _, v := range []int16{a.Min, a.Max} {
			req := kmsg.RequestForKey(a.Key)
			req.SetVersion(v)
			switch r := req.(type) {
			case *kmsg.ProduceRequest:
				r.Acks = -1
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Records = batch
				rt.Partitions = append(rt.Partitions, rp)
				r.Topics = append(r.Topics, rt)
			case *kmsg.FetchRequest:
				r.MaxWaitMillis = 1
				ft := kmsg.NewFetchRequestTopic()
				ft.Topic = "t"
				fp := kmsg.NewFetchRequestTopicPartition()
				fp.PartitionMaxBytes = 1 << 10
				ft.Partitions = append(ft.Partitions, fp)
				r.Topics = append(r.Topics, ft)
				r.SessionEpoch = 0 // opens a fetch session from v7
			case *kmsg.MetadataRequest:
				mt := kmsg.NewMetadataRequestTopic()
				mt.Topic = kmsg.StringPtr("t")
				r.Topics = append(r.Topics, mt)
				r.AllowAutoTopicCreation = true
			case *kmsg.JoinGroupRequest:
				r.Group, r.ProtocolType, r.SessionTimeoutMillis = "g", "consumer", 1000
				r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{1}}}
			case *kmsg.ConsumerGroupHeartbeatRequest:
				r.Group, r.MemberID, r.RebalanceTimeoutMillis = "cg", "m", 1000
				re := "t.*"
				r.SubscribedTopicNames, r.SubscribedTopicRegex, r.Topics = []string{"t"}, &re, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			case *kmsg.ConsumerGroupDescribeRequest:
				r.Groups = []string{"cg", "g"}
			case *kmsg.CreateTopicsRequest:
				ct := kmsg.NewCreateTopicsRequestTopic()
				ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "c", 1, 1
				r.Topics = append(r.Topics, ct)
			case *kmsg.OffsetForLeaderEpochRequest:
				rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
				rp.CurrentLeaderEpoch = 0
				rt.Partitions = append(rt.Partitions, rp)
				r.Topics = append(r.Topics, rt)
			case *kmsg.InitProducerIDRequest:
				r.TransactionalID = kmsg.StringPtr("tx")
				r.TransactionTimeoutMillis = 1000
			}
			b := f.AppendRequest(nil, req, 1)
			out = append(out, b[4:])
		}
	}
	return out
}

// FuzzParseRequest feeds arbitrary frames to the frame reader and request
// decoder: they must never panic, and a frame they accept must carry the
// api key and version of its header.
func FuzzParseRequest(f *testing.F) {
	for _, s := range seedRequests(f) {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0x05})
	f.Fuzz(func(t *testing.T, body []byte) {
		framed := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
		got, err := readFrame(bufio.NewReader(bytes.NewReader(framed)), 1<<20, nil, 0)
		if err != nil {
			if len(body) <= 1<<20 {
				t.Fatalf("readFrame rejected a whole frame: %v", err)
			}
			return
		}
		if !bytes.Equal(got, body) {
			t.Fatal("readFrame changed the frame")
		}
		h, req, err := parseRequest(got)
		if err != nil {
			return
		}
		if req.Key() != h.Key || req.GetVersion() != h.Version {
			t.Fatalf("header %d/%d, request %d/%d", h.Key, h.Version, req.Key(), req.GetVersion())
		}
	})
}

// FuzzDispatch sends arbitrary frames through the whole request path
// (decode, version check, handler) of a server over a real log: nothing may
// panic, every answer must encode, and the server must keep serving.
func FuzzDispatch(f *testing.F) {
	for _, s := range seedRequests(f) {
		f.Add(s)
	}
	log, err := logstore.Open(logstore.Options{Dir: f.TempDir(), DefaultFsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	defer log.Close()
	cfg := DefaultConfig()
	cfg.MaxTransactionTimeout = time.Second
	cfg.MaxPartitions = 4
	s, err := New(log, cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	cc := &clientConn{local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9092}, remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, auth: newConnAuth(Listener{Protocol: Plaintext})}
	f.Fuzz(func(t *testing.T, body []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		r, _, ok := s.handleFrame(ctx, cc, body)
		if !ok {
			return
		}
		resp := r.resp
		if r.finish != nil {
			resp = r.finish()
		}
		if resp != nil {
			appendResponse(nil, r.corr, resp)
		}
	})
}
