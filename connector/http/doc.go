// Package http is Sluice's HTTP ingest source: an endpoint, POST /ingest,
// that takes records as JSON lines or as one JSON array and hands each
// record to the pipeline as a connector.Message whose Value is the record's
// JSON. The package is named after its directory; import net/http under
// another name next to it.
//
// # Admission
//
// Records are admitted by a token bucket in records per second
// (golang.org/x/time/rate; Rate and Burst) and by the room left in the
// source's buffer toward the pipeline (BufferRecords). When either says no,
// the shedding policy decides:
//
//   - block: hold the request until tokens and room are available, up to
//     BlockTimeout (then 503 with the count accepted so far and
//     Retry-After);
//   - reject: answer 429 with Retry-After and accept nothing of the request;
//   - drop_oldest: keep the newest records: a request's oldest records
//     beyond the tokens are shed, and a full buffer sheds its oldest
//     records to make room;
//   - sample: keep SampleFraction of the request's records (systematic
//     sampling, exact over time), then shed what still does not fit.
//
// Every shed record is counted (Stats), by cause.
//
// # Acknowledgement
//
// Under AtLeastOnce a request is answered once all of its admitted records
// have been handed to the pipeline (returned by a split's Read). Under
// ExactlyOnce it is answered once a completed checkpoint covers them: the
// checkpoint coordinator calls CommitPosition on each split with the
// position that split had when the checkpoint's barrier passed. The
// answer is JSON: {"accepted": N, "shed": M}. Every 503 carries
// Retry-After.
//
// Under ExactlyOnce a request that fails (AckTimeout, or its client gone)
// withdraws its records not yet handed over, so that its retry does not
// deliver them twice; the records already handed over cannot be taken
// back, and a retry repeats them: clients that must not duplicate send an
// idempotency key per record and the pipeline deduplicates on it.
//
// # Stopping and restarting
//
// Stop drains: later requests get 503, the splits end once the buffer is
// empty, and the requests admitted before are answered as usual (under
// ExactlyOnce by the job's final checkpoint, which the runtime commits to
// the ended splits before closing them). A run ends when its last split
// closes: requests still waiting fail with 503 and their buffered records
// are dropped (the source cannot replay them; clients retry). Splits may
// be asked for again (a job restarted in-process) and the source serves
// again on the same address; Close ends it for good.
//
// # Security and limits
//
// The endpoint binds 127.0.0.1:8090 by default. Any address that is not
// loopback requires a bearer Token; when a Token is set every request must
// carry "Authorization: Bearer TOKEN". Without one, only requests
// addressed to a loopback name and sent by no other site's browser page
// are taken (netutil.LocalRequest: DNS rebinding, cross-site form posts).
// Bodies may be sent with
// Content-Encoding: gzip; MaxBodyBytes bounds them both as received and as
// inflated, and every connection has read, write and idle timeouts.
// MaxRequests bounds the requests in flight at once (so, with
// MaxBodyBytes, the memory their bodies hold); one more is answered 503
// with Retry-After before its body is read.
//
// The source is not replayable: a split's Position is the count of records
// it handed over, for checkpoints and CommitPosition; Seek accepts any
// position and changes nothing. Clients retry what was not acknowledged.
package http
