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
		{2 * time.Minute, false, 8 * time.Minute}, // at-least-once with checkpoints answers after them too
		{0, false, nethttp.DefaultAckTimeout},
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

// TestHTTPAnswersAfterCheckpointWhenCheckpointing: the http source
// cannot replay, so with checkpoints on a request answered as soon as its
// records were read would be lost by a crash before the next checkpoint
// although the client was told 200. With checkpoints, at-least-once too
// answers once a completed checkpoint covers the records (as mqtt and
// nats acknowledge); without, as they are read.
func TestHTTPAnswersAfterCheckpointWhenCheckpointing(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		eo       bool
		want     nethttp.Delivery
	}{
		{10 * time.Second, false, nethttp.ExactlyOnce},
		{10 * time.Second, true, nethttp.ExactlyOnce},
		{0, false, nethttp.AtLeastOnce},
	} {
		c := &httpSourceConfig{cfg: nethttp.Config{Addr: "127.0.0.1:0"}}
		src, err := c.open(&buildCtx{exactlyOnce: tc.eo, checkpointInterval: tc.interval})
		if err != nil {
			t.Fatal(err)
		}
		s := src.(*nethttp.Source)
		if got := s.Config().Delivery; got != tc.want {
			t.Errorf("interval %v, exactly once %v: delivery %v, want %v", tc.interval, tc.eo, got, tc.want)
		}
		s.Close()
	}
}
