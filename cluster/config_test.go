package cluster

import (
	"testing"
	"time"
)

// TestHeartbeatInterval: a third of the session timeout, never more than
// franz-go's default 3 s, so that a short session timeout (3 s) is not
// missed by one late heartbeat.
func TestHeartbeatInterval(t *testing.T) {
	for session, want := range map[time.Duration]time.Duration{
		10 * time.Second:       3 * time.Second,
		45 * time.Second:       3 * time.Second,
		6 * time.Second:        2 * time.Second,
		3 * time.Second:        time.Second,
		300 * time.Millisecond: 100 * time.Millisecond,
	} {
		if got := heartbeatInterval(session); got != want {
			t.Errorf("session %v: heartbeat %v, want %v", session, got, want)
		}
	}
}
