package pipeline

import (
	"testing"
	"time"

	nethttp "github.com/sluicehq/sluice/connector/http"
)

// TestHTTPExactlyOnceAckTimeoutCoversCheckpoints: under exactly_once an
// http request is answered once a completed checkpoint covers its
// records, so with a checkpoint interval longer than the default ack
// timeout every request would be answered 503 while its records still go
// through, and retried into duplicates. The ack timeout spans several
// checkpoint intervals instead.
func TestHTTPExactlyOnceAckTimeoutCoversCheckpoints(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		eo       bool
		want     time.Duration
	}{
		{2 * time.Minute, true, 8 * time.Minute},
		{time.Second, true, nethttp.DefaultAckTimeout},
		{2 * time.Minute, false, nethttp.DefaultAckTimeout},
	} {
		c := &httpSourceConfig{cfg: nethttp.Config{Addr: "127.0.0.1:0"}}
		src, err := c.open(&buildCtx{exactlyOnce: tc.eo, checkpointInterval: tc.interval})
		if err != nil {
			t.Fatal(err)
		}
		s := src.(*nethttp.Source)
		if got := s.Config().AckTimeout; got != tc.want {
			t.Errorf("interval %v, exactly once %v: ack timeout %v, want %v", tc.interval, tc.eo, got, tc.want)
		}
		s.Close()
	}
}
