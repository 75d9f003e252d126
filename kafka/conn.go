package kafka

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
)

// clientConn is what handlers know about the connection a request came on.
type clientConn struct {
	local    net.Addr
	remote   net.Addr
	clientID string
	auth     *connAuth // listener, principal, SASL state (sasl.go)
}

// clientHost returns the client's address in Kafka's "/ip" form.
func (c *clientConn) clientHost() string {
	if c.remote == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(c.remote.String())
	if err != nil {
		return "/" + c.remote.String()
	}
	return "/" + host
}

// maxInflight bounds the produce requests of one connection that have been
// read and assigned but not yet answered (clients pipeline up to 5).
const maxInflight = 8

// reply is a response in the connection's answer queue: ready (resp), or a
// produce request whose batches are assigned and whose answer finish gives
// once they are durable.
type reply struct {
	corr   int32
	resp   kmsg.Response
	finish func() kmsg.Response
	// closeIfFailed, with finish, reports (after it) that the request
	// failed unanswered (acks=0): the connection is closed.
	closeIfFailed func() bool
	key           int16
	start         time.Time
	token         []byte // a bare SASL message (after SaslHandshake v0), sent without a header
	// frame is the buffer a pipelined produce request was read into: its
	// batches are written to the log from it, so it goes back to the
	// connection's free frames only once finish has returned.
	frame []byte
}

// maxFreeFrames bounds the bytes of request buffers a connection keeps
// for reuse (a producer with 5 requests of 1 MiB in flight needs 6, one
// with 4 MiB batches about 28 MiB, with 8 MiB batches 56 MiB).
const maxFreeFrames = 64 << 20

// framePool is a connection's request buffers free for reuse: a produce
// request's buffer comes back from the writer once its batches are
// durable. It keeps at most maxFreeFrames bytes.
type framePool struct {
	free  chan []byte
	bytes atomic.Int64 // capacity of the buffers in free
}

func newFramePool() *framePool { return &framePool{free: make(chan []byte, maxInflight+2)} }

// get returns a free buffer, or nil.
func (p *framePool) get() []byte {
	select {
	case b := <-p.free:
		p.bytes.Add(-int64(cap(b)))
		return b
	default:
		return nil
	}
}

// put keeps b for reuse if the pool has room for it.
func (p *framePool) put(b []byte) {
	if p.bytes.Add(int64(cap(b))) > maxFreeFrames {
		p.bytes.Add(-int64(cap(b)))
		return
	}
	select {
	case p.free <- b[:0]:
	default:
		p.bytes.Add(-int64(cap(b)))
	}
}

// serveConn reads requests from c and answers them in order, as Kafka
// brokers do. Produce requests are pipelined: the reader assigns a
// request's batches their offsets (so a producer's batches to a partition
// stay in sequence order) and goes on reading while a writer goroutine
// waits for them to be durable and answers; the batches of the requests
// read meanwhile share the next fsync. Any other request is handled only
// once every answer before it has been written, so it sees the effects
// of the produce requests sent before it (a ListOffsets after an acks=0
// produce), and at most one such answer (a fetch can be large) is held.
func (s *Server) serveConn(c net.Conn, lis Listener) {
	s.metrics.connOpened()
	defer s.metrics.connClosed()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	replies := make(chan reply, maxInflight)
	written := make(chan struct{})
	// queued counts the replies not yet written (or dropped).
	var queued sync.WaitGroup
	frames := newFramePool()
	go func() {
		defer close(written)
		s.writeReplies(c, replies, &queued, frames)
	}()
	defer func() {
		close(replies)
		<-written // every assigned batch committed, every answer written
		c.Close()
	}()
	cc := &clientConn{local: c.LocalAddr(), remote: c.RemoteAddr(), auth: newConnAuth(lis)}
	if tc, ok := c.(*tls.Conn); ok {
		if err := s.handshake(ctx, tc, cc.auth); err != nil {
			s.metrics.reject("tls_handshake")
			s.logger.Info("kafka TLS handshake failed", "listener", lis.Name, "remote", cc.remote.String(), "err", err)
			return
		}
	}
	br := bufio.NewReaderSize(c, 64<<10)
	var reuse []byte
	proven := 0 // the largest frame this client has sent (readFrame)
	for {
		if reuse == nil {
			// Take a free buffer once the next request has begun to
			// arrive, not before: with a producer's pipeline full, every
			// buffer is in use until an answer goes out, and the client
			// sends its next request just after that answer, so waiting
			// finds the answered request's buffer back in the pool
			// instead of allocating (and growing) a new one. A Peek
			// error is readFrame's to report.
			if _, err := br.Peek(4); err == nil {
				reuse = frames.get()
			}
		}
		limit := s.cfg.MaxRequestBytes
		if !cc.auth.authed {
			// Until it has authenticated a client sends only ApiVersions
			// and the SASL exchange: small frames (Kafka bounds them by
			// sasl.server.max.receive.size the same way).
			limit = min(limit, maxUnauthenticatedFrame)
		}
		frame, err := readFrame(br, limit, reuse, proven)
		if err != nil {
			switch {
			case errors.Is(err, ErrFrameTooLarge) && !cc.auth.authed:
				s.metrics.reject("frame_too_large")
				s.logger.Info("kafka connection closed: frame too large before authentication", "listener", lis.Name, "remote", cc.remote.String(), "err", err)
				return
			case errors.Is(err, ErrFrameTooLarge):
				s.metrics.reject("frame_too_large")
			case errors.Is(err, ErrMalformed):
				s.metrics.reject("malformed")
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && s.ctx.Err() == nil {
				s.logger.Debug("closing kafka connection", "remote", cc.remote.String(), "err", err)
			}
			return
		}
		proven = max(proven, len(frame))
		if !isProduce(frame) {
			queued.Wait()
		}
		r, keep, ok := s.handleFrame(ctx, cc, frame)
		if !ok {
			return
		}
		reuse = nil
		switch {
		case r.finish != nil:
			r.frame = frame[:0] // the writer hands it back when finished
		case keep:
			reuse = frame[:0]
		}
		queued.Add(1)
		replies <- r
		if cc.auth.closing {
			return // after a failed authentication: the answer goes first
		}
		waitMuted(ctx, cc.auth)
	}
}

// writeReplies answers the queued replies in order. After a failed write
// it goes on draining, so that every assigned produce batch is committed.
func (s *Server) writeReplies(c net.Conn, replies <-chan reply, queued *sync.WaitGroup, frames *framePool) {
	var out []byte
	broken := false
	for r := range replies {
		resp := r.resp
		if r.finish != nil {
			resp = r.finish()
			s.metrics.request(r.key, time.Since(r.start))
		}
		if r.frame != nil {
			frames.put(r.frame)
		}
		if resp == nil && r.closeIfFailed != nil && r.closeIfFailed() && !broken {
			broken = true
			c.Close() // as a failed write: the reader stops at its next read
		}
		if (resp == nil && r.token == nil) || broken {
			queued.Done()
			continue // acks=0 produce: no response
		}
		if r.token != nil {
			out = appendToken(out[:0], r.token)
		} else {
			if hint := responseSizeHint(resp); cap(out) < hint {
				out = make([]byte, 0, hint)
			}
			out = appendResponse(out[:0], r.corr, resp)
		}
		_, err := c.Write(out)
		queued.Done()
		if err != nil {
			broken = true
			c.Close() // the reader stops at its next read
			continue
		}
		if cap(out) > 4<<20 {
			out = nil // do not pin a large fetch response buffer while idle
		}
	}
}

// handleFrame decodes and dispatches one request frame. ok is false when the
// connection must be closed (undecodable frame, unknown API or version, as
// Kafka does). keep reports whether the frame buffer may be reused: only
// requests whose handlers retain nothing from it.
func (s *Server) handleFrame(ctx context.Context, cc *clientConn, frame []byte) (r reply, keep, ok bool) {
	if cc.auth.rawToken() {
		return s.handleRawSASLToken(cc, frame), false, true
	}
	h, req, err := parseRequest(frame)
	if err != nil {
		if h.Key == apiKeyApiVersions && errors.Is(err, ErrMalformed) && len(frame) >= 8 {
			// A newer client's ApiVersions we cannot parse: answer v0 with
			// the versions we know so it can retry (KIP-511).
			return reply{corr: h.CorrelationID, resp: apiVersionsResponse(-1)}, false, true
		}
		s.logger.Debug("bad kafka request", "remote", cc.remote.String(), "err", err)
		if errors.Is(err, ErrUnknownAPI) {
			s.metrics.reject("unknown_api")
		} else {
			s.metrics.reject("malformed")
		}
		return reply{}, false, false
	}
	cc.clientID = h.ClientID
	r = reply{corr: h.CorrelationID, key: h.Key, start: time.Now()}
	if !cc.auth.admits(h.Key, r.start) {
		reason := "unauthenticated"
		if cc.auth.authed {
			reason = "session_expired"
		}
		s.metrics.reject(reason)
		s.logger.Info("closing kafka connection: request before authentication", "remote", cc.remote.String(), "listener", cc.auth.lis.Name, "api", apiName(h.Key), "reason", reason)
		return reply{}, false, false
	}
	if preq, isProduce := req.(*kmsg.ProduceRequest); isProduce && s.versionOK(cc, h) {
		// The batches are assigned in place: the frame may be reused
		// only once finish has returned (serveConn hands it to the
		// writer with the reply).
		op := s.startProduce(ctx, cc, preq)
		op.resp.ThrottleMillis = s.throttle(cc, auth.ProducerByteRate, produceBytes(preq),
			s.meterNamespaces("produce", acceptedBytesByTopic(preq, op.resp), 1))
		r.finish, r.closeIfFailed = op.finish, op.failedUnanswered
		return r, true, true
	}
	r.resp, ok = s.dispatchAuthorized(ctx, cc, h, req)
	if ok {
		s.metrics.request(h.Key, time.Since(r.start))
	} else {
		s.metrics.reject("unsupported_version")
	}
	keep = h.Key == apiKeyFetch
	return r, keep, ok
}

// isProduce reports whether frame holds a Produce request (its first two
// bytes are the API key).
func isProduce(frame []byte) bool {
	return len(frame) >= 2 && int16(binary.BigEndian.Uint16(frame)) == apiKeyProduce
}

// versionOK reports whether the server serves this version of the API.
func (s *Server) versionOK(cc *clientConn, h requestHeader) bool {
	r, known := versionRange(h.Key)
	if !known || h.Version < r.Min || h.Version > r.Max {
		s.logger.Debug("unsupported kafka api version", "key", h.Key, "version", h.Version, "remote", cc.remote.String())
		return false
	}
	return true
}

// dispatch checks the version and calls the API's handler. ok is false for
// a version the server does not serve (the connection is closed), except
// ApiVersions, which always answers.
func (s *Server) dispatch(ctx context.Context, cc *clientConn, h requestHeader, req kmsg.Request) (kmsg.Response, bool) {
	if h.Key == apiKeyApiVersions {
		return apiVersionsResponse(h.Version), true
	}
	if !s.versionOK(cc, h) {
		return nil, false
	}
	switch req := req.(type) {
	case *kmsg.ProduceRequest:
		return s.handleProduce(ctx, cc, req), true
	case *kmsg.FetchRequest:
		return s.throttleFetch(cc, s.handleFetchFor(ctx, cc, req)), true
	case *kmsg.ListOffsetsRequest:
		return s.handleListOffsets(req), true
	case *kmsg.MetadataRequest:
		return s.handleMetadata(cc, req), true
	case *kmsg.OffsetCommitRequest:
		return s.handleOffsetCommit(ctx, req), true
	case *kmsg.OffsetFetchRequest:
		return s.handleOffsetFetch(req), true
	case *kmsg.FindCoordinatorRequest:
		return s.handleFindCoordinator(cc, req), true
	case *kmsg.JoinGroupRequest:
		return s.handleJoinGroup(ctx, cc, req), true
	case *kmsg.HeartbeatRequest:
		return s.handleHeartbeat(req), true
	case *kmsg.LeaveGroupRequest:
		return s.handleLeaveGroup(req), true
	case *kmsg.SyncGroupRequest:
		return s.handleSyncGroup(ctx, req), true
	case *kmsg.DescribeGroupsRequest:
		return s.handleDescribeGroups(req), true
	case *kmsg.ListGroupsRequest:
		return s.handleListGroups(req), true
	case *kmsg.DeleteGroupsRequest:
		return s.handleDeleteGroups(ctx, req), true
	case *kmsg.SASLHandshakeRequest:
		return s.handleSASLHandshake(cc, req), true
	case *kmsg.SASLAuthenticateRequest:
		return s.handleSASLAuthenticate(cc, req), true
	case *kmsg.DescribeUserSCRAMCredentialsRequest:
		return s.handleDescribeUserSCRAMCredentials(req), true
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		return s.handleAlterUserSCRAMCredentials(ctx, req), true
	case *kmsg.DescribeClientQuotasRequest:
		return s.handleDescribeClientQuotas(req), true
	case *kmsg.AlterClientQuotasRequest:
		return s.handleAlterClientQuotas(ctx, req), true
	case *kmsg.CreateTopicsRequest:
		return s.handleCreateTopics(req), true
	case *kmsg.DeleteTopicsRequest:
		return s.handleDeleteTopics(req), true
	case *kmsg.DescribeConfigsRequest:
		return s.handleDescribeConfigs(req), true
	case *kmsg.AlterConfigsRequest:
		return s.handleAlterConfigs(req), true
	case *kmsg.IncrementalAlterConfigsRequest:
		return s.handleIncrementalAlterConfigs(req), true
	case *kmsg.CreatePartitionsRequest:
		return s.handleCreatePartitions(req), true
	case *kmsg.DeleteRecordsRequest:
		return s.handleDeleteRecords(req), true
	case *kmsg.InitProducerIDRequest:
		return s.handleInitProducerID(ctx, req), true
	case *kmsg.OffsetForLeaderEpochRequest:
		return s.handleOffsetForLeaderEpoch(req), true
	case *kmsg.AddPartitionsToTxnRequest:
		return s.handleAddPartitionsToTxn(ctx, req), true
	case *kmsg.AddOffsetsToTxnRequest:
		return s.handleAddOffsetsToTxn(ctx, req), true
	case *kmsg.TxnOffsetCommitRequest:
		return s.handleTxnOffsetCommit(ctx, req), true
	case *kmsg.EndTxnRequest:
		return s.handleEndTxn(ctx, req), true
	case *kmsg.DescribeClusterRequest:
		return s.handleDescribeCluster(cc, req), true
	case *kmsg.DescribeLogDirsRequest:
		return s.handleDescribeLogDirs(req), true
	case *kmsg.DescribeProducersRequest:
		return s.handleDescribeProducers(req), true
	case *kmsg.ListTransactionsRequest:
		return s.handleListTransactions(req), true
	case *kmsg.DescribeTransactionsRequest:
		return s.handleDescribeTransactions(req), true
	case *kmsg.OffsetDeleteRequest:
		return s.handleOffsetDelete(ctx, req), true
	case *kmsg.ConsumerGroupHeartbeatRequest:
		return s.handleConsumerGroupHeartbeat(cc, req), true
	case *kmsg.ConsumerGroupDescribeRequest:
		return s.handleConsumerGroupDescribe(req), true
	case *kmsg.DescribeACLsRequest:
		return s.handleDescribeACLs(req), true
	case *kmsg.CreateACLsRequest:
		return s.handleCreateACLs(ctx, req), true
	case *kmsg.DeleteACLsRequest:
		return s.handleDeleteACLs(ctx, req), true
	}
	return nil, false
}

// responseSizeHint estimates the encoded size of a response so that large
// fetch responses are encoded into one allocation instead of a growing one.
func responseSizeHint(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 4 << 10
	}
	n := 64
	for i := range f.Topics {
		t := &f.Topics[i]
		n += 32 + len(t.Topic)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			n += 64 + 16*len(p.AbortedTransactions) + len(p.RecordBatches)
		}
	}
	return n
}
