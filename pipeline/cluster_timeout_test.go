package pipeline

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestClusterDeliveryTimeoutParsed: cluster.delivery_timeout reaches the
// spec (it bounds an at-least-once commit's wait for the brokers).
func TestClusterDeliveryTimeoutParsed(t *testing.T) {
	text := fmt.Sprintf(clusterSpec, "localhost:9092", "dt", DeliveryAtLeastOnce)
	text = strings.Replace(text, "session_timeout: 6s}", "session_timeout: 6s, delivery_timeout: 3s}", 1)
	s, err := Parse("dt.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Cluster.DeliveryTimeout; got != 3*time.Second {
		t.Fatalf("cluster.delivery_timeout parsed as %v, want 3s", got)
	}
}
