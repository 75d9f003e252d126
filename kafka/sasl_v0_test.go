package kafka_test

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TestSASLHandshakeV0RawTokens: after SaslHandshake v0 (pre-1.0 clients)
// the mechanism's messages travel as bare size-prefixed frames; a
// success is answered in kind and the connection serves requests; a
// failure closes it without an answer, as Kafka does.
func TestSASLHandshakeV0RawTokens(t *testing.T) {
	s, _ := secureServer(t, 0)
	addr := s.Addrs["SASL_PLAINTEXT"]
	av := dialRaw(t, addr).request(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	for _, k := range av.ApiKeys {
		if k.ApiKey == 17 && (k.MinVersion != 0 || k.MaxVersion != 1) {
			t.Fatalf("SaslHandshake versions %d-%d, want 0-1 (librdkafka needs v0 offered)", k.MinVersion, k.MaxVersion)
		}
	}
	handshake := func(r *rawConn, mech string) {
		t.Helper()
		if hs := r.request(&kmsg.SASLHandshakeRequest{Version: 0, Mechanism: mech}).(*kmsg.SASLHandshakeResponse); hs.ErrorCode != 0 {
			t.Fatalf("%s handshake v0: error %d", mech, hs.ErrorCode)
		}
	}
	token := func(r *rawConn, b []byte) []byte {
		t.Helper()
		r.send(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...))
		out, err := r.readFrame()
		if err != nil {
			t.Fatalf("reading the server's token: %v", err)
		}
		return out
	}
	metadataWorks := func(r *rawConn) {
		t.Helper()
		if md := r.request(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); len(md.Brokers) != 1 {
			t.Fatalf("metadata after authenticating: %+v", md)
		}
	}

	// PLAIN: one token, an empty answer.
	r := dialRaw(t, addr)
	handshake(r, "PLAIN")
	if out := token(r, []byte("\x00alice\x00alice-secret")); len(out) != 0 {
		t.Fatalf("PLAIN answer %q, want empty", out)
	}
	metadataWorks(r)

	// SCRAM-SHA-512 through franz-go's client session.
	r = dialRaw(t, addr)
	handshake(r, "SCRAM-SHA-512")
	sess, first, err := scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism().Authenticate(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := first
	for {
		done, next, err := sess.Challenge(token(r, msg))
		if err != nil {
			t.Fatalf("SCRAM over bare frames: %v", err)
		}
		if done {
			break
		}
		msg = next
	}
	metadataWorks(r)

	// A wrong password: closed without an answer.
	r = dialRaw(t, addr)
	handshake(r, "PLAIN")
	r.send(append(binary.BigEndian.AppendUint32(nil, 18), []byte("\x00alice\x00wrong-pass")...))
	r.expectClosed()
}
