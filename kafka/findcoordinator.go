package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleFindCoordinator answers that this broker coordinates every group and
// every transactional id.
func (s *Server) handleFindCoordinator(cc *clientConn, req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := s.advertised(cc)
	if req.Version < 4 {
		resp.NodeID, resp.Host, resp.Port = s.cfg.NodeID, host, port
		return resp
	}
	for _, k := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Host, c.Port = k, s.cfg.NodeID, host, port
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp
}
