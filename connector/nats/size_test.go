package nats

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// TestJetStreamSinkFailsOnOversizedMessage: a message larger than the
// server's max_payload, or than the stream's max_msg_size, can never be
// published; the write fails at once with an error that says so. It
// used to be taken for a lost publish and sent again with backoff 20
// times (over a minute), and then reported as "not sent (is a stream
// capturing the subject, and the server up?)".
func TestJetStreamSinkFailsOnOversizedMessage(t *testing.T) {
	addr := serverAddr(t)
	name, js := testStream(t, addr)
	ctx := context.Background()
	small := name + "_small"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: small, Subjects: []string{small + ".>"}, MaxMsgSize: 1024}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), small) })
	maxPayload := int(js.Conn().MaxPayload())
	for _, tc := range []struct {
		name, subject string
		size          int
		is            func(error) bool
	}{
		{"server max_payload", name + ".out", maxPayload + 1, func(err error) bool { return errors.Is(err, nats.ErrMaxPayload) }},
		{"stream max_msg_size", small + ".out", 2048, func(err error) bool {
			var ae *jetstream.APIError
			return errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, ctx := openQuietSink(t, addr, tc.subject, true)
			err := writeAndBarrier(ctx, w, connector.Message{Value: bytes.Repeat([]byte("x"), tc.size)})
			if err == nil || ctx.Err() != nil || !tc.is(err) {
				t.Fatalf("got %v (context: %v); want the size error at once", err, ctx.Err())
			}
		})
	}
}

// TestSinkRejectsOverlongSubject: a subject (rendered from the data)
// longer than the server's protocol line allows fails the write with the
// reason. It used to be sent: the server closed the connection for good
// (maximum control line exceeded), and every publish after it was
// retried 20 times over more than a minute before the sink failed with
// "not sent (is a stream capturing the subject, and the server up?)".
func TestSinkRejectsOverlongSubject(t *testing.T) {
	addr := serverAddr(t)
	name, _ := testStream(t, addr)
	for _, js := range []bool{true, false} {
		w, ctx := openQuietSink(t, addr, name+".out", js)
		long := name + "." + string(bytes.Repeat([]byte("x"), 5000))
		err := writeAndBarrier(ctx, w, connector.Message{Key: []byte(long), Value: []byte("v")})
		if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "at most") {
			t.Fatalf("jetstream %v: got %.200v (context: %v); want the subject's length refused", js, err, ctx.Err())
		}
	}
}

// TestJetStreamSinkFailsOnClosedConnection: nats.go reconnects forever,
// so a connection that is closed was closed for good (a fatal error of
// the server); publishes on it fail at once with that reason instead of
// being retried 20 times.
func TestJetStreamSinkFailsOnClosedConnection(t *testing.T) {
	addr := serverAddr(t)
	name, _ := testStream(t, addr)
	w, ctx := openQuietSink(t, addr, name+".out", true)
	w.(*jsWriter).nc.Close()
	err := writeAndBarrier(ctx, w, connector.Message{Value: []byte("v")})
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "connection was closed") {
		t.Fatalf("got %v (context: %v); want the closed connection reported at once", err, ctx.Err())
	}
}

// openQuietSink opens a sink writer publishing to subject, with a
// context that ends the test's wait for it after 20 s.
func openQuietSink(t *testing.T, addr, subject string, js bool) (stream.SinkWriter[connector.Message], context.Context) {
	t.Helper()
	sink, err := NewSink(SinkConfig{ConnConfig: ConnConfig{URL: "nats://" + addr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, JetStream: js, Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	w, err := sink.Open(ctx, stream.SubtaskInfo{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w, ctx
}

// writeAndBarrier writes m and passes a barrier; it returns the first
// error.
func writeAndBarrier(ctx context.Context, w stream.SinkWriter[connector.Message], m connector.Message) error {
	if err := w.Write(ctx, []connector.Message{m}); err != nil {
		return err
	}
	return w.(stream.BarrierWriter).OnBarrier(ctx, 1)
}
