package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/sluicehq/sluice/observe"
)

// events streams server-sent events: after every sample of o, one
// "overview" event (job "" ) or one "job" event for job id. A comment line
// every 15 seconds keeps idle proxies from closing the stream. The stream
// ends when the client goes away, the job is unregistered, the server
// shuts down, or (stillAuthorized, checked before each event) the
// request's token no longer authenticates or its principal is no longer
// allowed.
func (s *Server) events(w http.ResponseWriter, r *http.Request, o *observe.Observer, job string) {
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		writeError(w, http.StatusServiceUnavailable, "too many event streams (limit %d)", maxEventStreams)
		return
	}
	rc := http.NewResponseController(w)
	// The server's read and write timeouts would cut the stream (an
	// expired read deadline cancels the request's context): lift them for
	// this response only.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ch, cancel := o.Subscribe()
	defer cancel()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	lastSeq := 0
	send := func() bool {
		snap := o.Snapshot()
		if snap.Seq <= lastSeq {
			return true // already sent (woken by the sample we took ourselves)
		}
		lastSeq = snap.Seq
		if !s.stillAuthorized(r) {
			return false // the token was revoked or expired, or the ACLs changed
		}
		var name string
		var body []byte
		var err error
		if job == "" {
			name = "overview"
			body, err = json.Marshal(s.visibleOverview(r, snap))
		} else {
			j, jerr := snap.Job(job)
			if jerr != nil {
				fmt.Fprintf(w, "event: gone\ndata: %q\n\n", jerr.Error())
				_ = rc.Flush()
				return false
			}
			var pt observe.HistoryPoint
			if h, _ := o.History(job); len(h) > 0 {
				pt = h[len(h)-1]
			}
			name = "job"
			body, err = json.Marshal(JobEvent{Time: snap.Time, Seq: snap.Seq, Job: j, Point: pt})
		}
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\nid: %d\ndata: %s\n\n", name, snap.Seq, body); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send() {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.stopStreams:
			return
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-ch:
			if !send() {
				return
			}
		}
	}
}
