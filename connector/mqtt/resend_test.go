package mqtt

import (
	"testing"

	"github.com/sluicehq/sluice/connector"
)

// fakeMsg is a received MQTT message for handle.
type fakeMsg struct {
	mid   uint16
	dup   bool
	acked int
}

func (m *fakeMsg) Duplicate() bool   { return m.dup }
func (m *fakeMsg) Qos() byte         { return 1 }
func (m *fakeMsg) Retained() bool    { return false }
func (m *fakeMsg) Topic() string     { return "t" }
func (m *fakeMsg) MessageID() uint16 { return m.mid }
func (m *fakeMsg) Payload() []byte   { return []byte("v") }
func (m *fakeMsg) Ack()              { m.acked++ }

// A broker resends, right after the reconnection's CONNACK, the QoS 1
// messages it never saw acknowledged. paho runs the on-connect handler
// in a goroutine of its own, so such a resend can reach handle before the
// source has counted the new connection: it must still be recognised as
// the message the source holds (same packet id, DUP set), not passed on a
// second time, and acknowledged once, with the resend's acknowledgement.
func TestSourceSkipsResendBeforeConnectHandler(t *testing.T) {
	sp := &split{cfg: SourceConfig{AckOnCheckpoint: true, MaxInFlight: 10}, meter: connector.NewMeter(), in: make(chan inMsg, 10), closed: make(chan struct{}), room: make(chan struct{}, 1)}
	sp.conn.Store(1)
	first := &fakeMsg{mid: 5}
	sp.handle(nil, first)
	// The connection breaks and comes back; the resend arrives before
	// the on-connect handler has run (sp.conn still 1).
	resend := &fakeMsg{mid: 5, dup: true}
	sp.handle(nil, resend)
	if n := len(sp.in); n != 1 {
		t.Fatalf("%d messages passed on, want 1 (the resend is the same message)", n)
	}
	sp.ackUpTo(1)
	if first.acked+resend.acked != 1 || resend.acked != 1 {
		t.Fatalf("acknowledgements: first %d, resend %d; want the resend's only", first.acked, resend.acked)
	}
}
