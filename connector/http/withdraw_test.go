package http

import (
	"context"
	"encoding/json"
	nethttp "net/http"
	"strings"
	"testing"
	"time"
)

// TestExactlyOnceFailedRequestWithdrawn: under ExactlyOnce, a request
// answered 503 because its acknowledgement timed out, or whose client went
// away, must not leave its records not yet handed over in the buffer: the
// client retries them, and the pipeline would get them twice. The records
// already handed over stay (they cannot be taken back).
func TestExactlyOnceFailedRequestWithdrawn(t *testing.T) {
	t.Run("ack timeout", func(t *testing.T) {
		// Nobody reads: the acknowledgement cannot come before AckTimeout.
		s, sp := newSource(t, Config{Delivery: ExactlyOnce, AckTimeout: time.Millisecond})
		if res := post(t, s, lines(3, "a")); res.code != 503 || res.ans.Accepted != 0 {
			t.Fatalf("%+v, want 503 with nothing accepted", res)
		}
		if st := s.Stats(); st.Accepted != 0 || st.NotAdmitted != 3 {
			t.Fatalf("stats %+v, want the 3 records withdrawn", st)
		}
		if sp.(interface{ Buffered() bool }).Buffered() {
			t.Fatal("the failed request's records are still buffered for the pipeline")
		}
	})
	t.Run("client gone after one record was handed over", func(t *testing.T) {
		s, sp := newSource(t, Config{Delivery: ExactlyOnce})
		ctx, cancel := context.WithCancel(context.Background())
		req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, "http://"+s.Addr()+DefaultPath, strings.NewReader(lines(3, "a")))
		if err != nil {
			t.Fatal(err)
		}
		gone := make(chan error, 1)
		go func() {
			res, err := nethttp.DefaultClient.Do(req)
			if err == nil {
				var a answer
				json.NewDecoder(res.Body).Decode(&a)
				res.Body.Close()
				t.Errorf("answered %d %+v before the checkpoint", res.StatusCode, a)
			}
			gone <- err
		}()
		if got := readN(t, sp, 1); got[0] != `{"id":"a0"}` {
			t.Fatalf("first record %s", got[0])
		}
		cancel()
		<-gone
		waitFor(t, "the request's records to be withdrawn", func() bool { return s.Stats().NotAdmitted == 2 })
		postAsync(t, s, lines(1, "b"))
		if got := readN(t, sp, 1); got[0] != `{"id":"b0"}` {
			t.Fatalf("the pipeline got %s, want the next request's b0", got[0])
		}
		// The record handed over is committed with the checkpoint as usual.
		if err := sp.(interface {
			CommitPosition(context.Context, []byte) error
		}).CommitPosition(context.Background(), sp.Position()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWithdrawKeepsOthersInOrder withdraws one request's records from a
// ring buffer that wraps around, interleaved with another's: the other
// records must stay, in order, and the counts follow.
func TestWithdrawKeepsOthersInOrder(t *testing.T) {
	s, err := NewSource(Config{BufferRecords: 5, Delivery: ExactlyOnce})
	if err != nil {
		t.Fatal(err)
	}
	s.head = 3 // the buffer wraps: slots 3, 4, 0, 1
	a, b := &ticket{done: make(chan struct{})}, &ticket{done: make(chan struct{})}
	for _, r := range []struct {
		t *ticket
		v string
	}{{a, "a0"}, {b, "b0"}, {a, "a1"}, {b, "b1"}} {
		s.enqueue(r.t, [][]byte{[]byte(r.v)}, 0)
	}
	s.withdraw(a)
	var got []string
	for i := range s.n {
		e := s.ring[(s.head+i)%len(s.ring)]
		got = append(got, string(e.msg.Value))
	}
	if strings.Join(got, ",") != "b0,b1" || a.pending != 0 || b.pending != 2 {
		t.Fatalf("buffer %v, pending a %d b %d; want b0,b1 and 0, 2", got, a.pending, b.pending)
	}
	for i := s.n; i < len(s.ring); i++ {
		if e := s.ring[(s.head+i)%len(s.ring)]; e.t != nil {
			t.Fatalf("slot %d still holds %q", (s.head+i)%len(s.ring), e.msg.Value)
		}
	}
	if st := s.Stats(); st.Accepted != 2 || st.NotAdmitted != 2 {
		t.Fatalf("stats %+v", st)
	}
}
