package kafka_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn is a bare TCP connection to the server for hand-made frames.
type rawConn struct {
	t *testing.T
	c net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, c: c}
}

func (r *rawConn) send(b []byte) {
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// request sends req at its version and decodes the response.
func (r *rawConn) request(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	r.send(kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, 7))
	body, err := r.readFrame()
	if err != nil {
		r.t.Fatalf("reading response: %v", err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != 7 {
		r.t.Fatalf("correlation id %d", corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != 18 {
		body = body[1:] // empty header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("decoding response: %v", err)
	}
	return resp
}

func (r *rawConn) readFrame() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(r.c, body)
	return body, err
}

// expectClosed checks the server closed the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	if _, err := r.readFrame(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
		r.t.Fatalf("connection not closed: %v", err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

func frame(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func header(key, version int16) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, 1)
	return binary.BigEndian.AppendUint16(b, 0xffff) // null client id
}

func produceReq(topic string, batch []byte, version int16) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = []kmsg.ProduceRequestTopicPartition{rp}
	req.Topics = []kmsg.ProduceRequestTopic{rt}
	return req
}

func TestBadInput(t *testing.T) {
	cfg := kafka.DefaultConfig()
	cfg.AutoCreateTopics = false
	cfg.MaxRequestBytes = 1 << 20
	s := kafkatest.Start(t, kafkatest.Options{Config: &cfg})
	createTopic(t, s, "good", 1)
	good, err := record.AppendBatch(nil, []record.Record{{Value: []byte("v"), Timestamp: 1}}, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cl := s.Client(t, kgo.DefaultProduceTopic("good"))
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	closes := []struct {
		name string
		data []byte
	}{
		{"truncated frame", append(binary.BigEndian.AppendUint32(nil, 100), 1, 2, 3)},
		{"frame over the limit", binary.BigEndian.AppendUint32(nil, 2<<20)},
		{"negative frame size", binary.BigEndian.AppendUint32(nil, 0xfffffff0)},
		{"frame shorter than a header", frame([]byte{0, 3, 0})},
		{"unknown api key", frame(header(999, 0))},
		{"unsupported metadata version", frame(header(3, 99))},
		{"garbage metadata body", frame(append(header(3, 1), 0x7f, 0xff, 0xff, 0xff))},
		{"client id longer than the frame", frame([]byte{0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0})},
	}
	for _, tc := range closes {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, s.Addr)
			r.send(tc.data)
			if tc.name == "truncated frame" {
				r.c.(*net.TCPConn).CloseWrite()
			}
			r.expectClosed()
		})
	}

	t.Run("api versions at an unknown version", func(t *testing.T) {
		r := dialRaw(t, s.Addr)
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(3)
		r.send(frame(append(header(18, 42), 0)))
		body, err := r.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.SetVersion(0)
		if err := resp.ReadFrom(body[4:]); err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
			t.Fatalf("answer: code %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
		}
	})

	answers := []struct {
		name string
		req  kmsg.Request
		code int16
	}{
		{"produce v2", produceReq("good", good, 2), kerr.UnsupportedVersion.Code},
		{"produce to a missing topic", produceReq("missing", good, 7), kerr.UnknownTopicOrPartition.Code},
		{"bad crc", produceReq("good", flipByte(good, len(good)-1), 7), kerr.CorruptMessage.Code},
		{"truncated batch", produceReq("good", good[:len(good)-3], 7), kerr.CorruptMessage.Code},
		{"not a batch", produceReq("good", bytes.Repeat([]byte{9}, 80), 7), kerr.CorruptMessage.Code},
		{"magic 1", produceReq("good", setByte(good, 16, 1), 7), kerr.CorruptMessage.Code},
		{"write to the transaction state", produceReq("__transaction_state", good, 7), kerr.InvalidTopicException.Code},
		{"write to the offsets topic", produceReq("__consumer_offsets", good, 7), kerr.InvalidTopicException.Code},
	}
	for _, tc := range answers {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, s.Addr)
			resp := r.request(tc.req).(*kmsg.ProduceResponse)
			if got := resp.Topics[0].Partitions[0].ErrorCode; got != tc.code {
				t.Fatalf("code %d, want %d", got, tc.code)
			}
		})
	}

	t.Run("metadata for a missing topic", func(t *testing.T) {
		r := dialRaw(t, s.Addr)
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(9)
		req.AllowAutoTopicCreation = true
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("missing")
		req.Topics = append(req.Topics, mt)
		resp := r.request(req).(*kmsg.MetadataResponse)
		if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("code %d", resp.Topics[0].ErrorCode)
		}
	})

	t.Run("fetch out of range", func(t *testing.T) {
		r := dialRaw(t, s.Addr)
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(11)
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "good"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset = 1000
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		req.MaxBytes = 1 << 20
		resp := r.request(req).(*kmsg.FetchResponse)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != 1 {
			t.Fatalf("code %d hwm %d", p.ErrorCode, p.HighWatermark)
		}
	})

	// The server still serves, and nothing stored was damaged.
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := readValues(t, s, "good", kgo.ReadUncommitted(), 2); len(got) != 2 || got[0] != "before" || got[1] != "after" {
		t.Fatalf("stored %v", got)
	}

}

func flipByte(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}

func setByte(b []byte, i int, v byte) []byte {
	c := bytes.Clone(b)
	c[i] = v
	return c
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := kafka.DefaultConfig()
	cfg.Registerer = reg
	s := kafkatest.Start(t, kafkatest.Options{Config: &cfg})
	createTopic(t, s, "m", 1)
	r := dialRaw(t, s.Addr)
	r.send(frame(header(999, 0)))
	r.expectClosed()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				found[f.GetName()+"{"+l.GetValue()+"}"] = true
			}
		}
	}
	for _, want := range []string{"sluice_kafka_requests_total{CreateTopics}", "sluice_kafka_requests_total{ApiVersions}", "sluice_kafka_connections_closed_on_bad_input_total{unknown_api}"} {
		if !found[want] {
			t.Errorf("metric %s missing; have %v", want, found)
		}
	}
}
