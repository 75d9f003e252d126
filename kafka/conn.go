package kafka

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// clientConn is what handlers know about the connection a request came on.
type clientConn struct {
	local    net.Addr
	remote   net.Addr
	clientID string
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

// serveConn reads requests from c one at a time and answers them in order,
// as Kafka brokers do: a client that pipelines requests gets its responses
// in the order sent, and a request is handled only after the previous one on
// the same connection completed (which keeps a producer's batches to one
// partition in sequence order).
func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	s.metrics.connOpened()
	defer s.metrics.connClosed()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	cc := &clientConn{local: c.LocalAddr(), remote: c.RemoteAddr()}
	br := bufio.NewReaderSize(c, 64<<10)
	var reuse, out []byte
	for {
		frame, err := readFrame(br, s.cfg.MaxRequestBytes, reuse)
		if err != nil {
			switch {
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
		resp, corr, keep, ok := s.handleFrame(ctx, cc, frame)
		if !ok {
			return
		}
		reuse = nil
		if keep {
			reuse = frame[:0]
		}
		if resp == nil {
			continue // acks=0 produce: no response
		}
		if hint := responseSizeHint(resp); cap(out) < hint {
			out = make([]byte, 0, hint)
		}
		out = appendResponse(out[:0], corr, resp)
		if _, err := c.Write(out); err != nil {
			return
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
func (s *Server) handleFrame(ctx context.Context, cc *clientConn, frame []byte) (resp kmsg.Response, corr int32, keep, ok bool) {
	h, req, err := parseRequest(frame)
	if err != nil {
		if h.Key == apiKeyApiVersions && errors.Is(err, ErrMalformed) && len(frame) >= 8 {
			// A newer client's ApiVersions we cannot parse: answer v0 with
			// the versions we know so it can retry (KIP-511).
			return apiVersionsResponse(-1), h.CorrelationID, false, true
		}
		s.logger.Debug("bad kafka request", "remote", cc.remote.String(), "err", err)
		if errors.Is(err, ErrUnknownAPI) {
			s.metrics.reject("unknown_api")
		} else {
			s.metrics.reject("malformed")
		}
		return nil, 0, false, false
	}
	cc.clientID = h.ClientID
	start := time.Now()
	resp, ok = s.dispatch(ctx, cc, h, req)
	if ok {
		s.metrics.request(h.Key, time.Since(start))
	} else {
		s.metrics.reject("unsupported_version")
	}
	keep = h.Key == apiKeyProduce || h.Key == apiKeyFetch
	return resp, h.CorrelationID, keep, ok
}

// dispatch checks the version and calls the API's handler. ok is false for
// a version the server does not serve (the connection is closed), except
// ApiVersions, which always answers.
func (s *Server) dispatch(ctx context.Context, cc *clientConn, h requestHeader, req kmsg.Request) (kmsg.Response, bool) {
	r, known := versionRange(h.Key)
	if h.Key == apiKeyApiVersions {
		return apiVersionsResponse(h.Version), true
	}
	if !known || h.Version < r.Min || h.Version > r.Max {
		s.logger.Debug("unsupported kafka api version", "key", h.Key, "version", h.Version, "remote", cc.remote.String())
		return nil, false
	}
	switch req := req.(type) {
	case *kmsg.ProduceRequest:
		return s.handleProduce(ctx, req), true
	case *kmsg.FetchRequest:
		return s.handleFetch(ctx, req), true
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
	case *kmsg.CreateTopicsRequest:
		return s.handleCreateTopics(req), true
	case *kmsg.DeleteTopicsRequest:
		return s.handleDeleteTopics(req), true
	case *kmsg.DescribeConfigsRequest:
		return s.handleDescribeConfigs(req), true
	case *kmsg.InitProducerIDRequest:
		return s.handleInitProducerID(ctx, req), true
	case *kmsg.AddPartitionsToTxnRequest:
		return s.handleAddPartitionsToTxn(ctx, req), true
	case *kmsg.AddOffsetsToTxnRequest:
		return s.handleAddOffsetsToTxn(ctx, req), true
	case *kmsg.TxnOffsetCommitRequest:
		return s.handleTxnOffsetCommit(ctx, req), true
	case *kmsg.EndTxnRequest:
		return s.handleEndTxn(ctx, req), true
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
