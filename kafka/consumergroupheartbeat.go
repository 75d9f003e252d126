package kafka

import (
	crand "crypto/rand"
	"encoding/base64"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
)

// handleConsumerGroupHeartbeat serves the consumer group protocol (KIP-848;
// see consumergroup.go): joining (epoch 0), heartbeating, leaving (-1, or -2
// for a static member leaving for a while).
func (s *Server) handleConsumerGroupHeartbeat(cc *clientConn, req *kmsg.ConsumerGroupHeartbeatRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.HeartbeatIntervalMillis = int32(s.cfg.ConsumerHeartbeatInterval.Milliseconds())
	if code, msg := validateConsumerHeartbeat(req); code != 0 {
		resp.ErrorCode, resp.ErrorMessage = code, kmsg.StringPtr(msg)
		return resp
	}
	p := cgParams{
		Group: req.Group, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch,
		InstanceID: req.InstanceID, RackID: req.RackID,
		RebalanceTimeout: time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		SubscribedNames:  req.SubscribedTopicNames, SubscribedRegex: req.SubscribedTopicRegex,
		ServerAssignor: req.ServerAssignor, OwnedSent: req.Topics != nil,
		ClientID: cc.clientID, ClientHost: cc.clientHost(),
		MayDescribe: s.regexTopicFilter(cc),
	}
	if req.RebalanceTimeoutMillis < 0 {
		p.RebalanceTimeout = -1
	}
	// The topic list is read under gmu, so that the coordinator is given
	// topic lists in the order they were read (see tickGroups).
	s.gmu.Lock()
	meta := s.topicMeta()
	byName := s.topicIDs()
	ids := make(map[[16]byte]string, len(meta))
	for name := range meta {
		ids[byName[name]] = name
	}
	for _, t := range req.Topics {
		name, ok := ids[t.TopicID]
		if !ok {
			continue // a deleted topic: nothing to hold
		}
		for _, part := range t.Partitions {
			p.Owned = append(p.Owned, tp{name, part})
		}
	}
	r := s.consumerHeartbeat(time.Now(), p, meta)
	s.gmu.Unlock()
	resp.ErrorCode = r.ErrorCode
	if r.ErrorMessage != "" {
		resp.ErrorMessage = kmsg.StringPtr(r.ErrorMessage)
	}
	if r.ErrorCode != 0 {
		return resp
	}
	resp.MemberID = kmsg.StringPtr(r.MemberID)
	resp.MemberEpoch = r.MemberEpoch
	if r.HasAssignment {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		for _, t := range r.Assignment {
			if n := len(a.Topics); n == 0 || a.Topics[n-1].TopicID != byName[t.Topic] {
				at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
				at.TopicID = byName[t.Topic]
				a.Topics = append(a.Topics, at)
			}
			at := &a.Topics[len(a.Topics)-1]
			at.Partitions = append(at.Partitions, t.Partition)
		}
		resp.Assignment = &a
	}
	return resp
}

// regexTopicFilter returns the topics a regex subscription of cc's
// principal may match: those it may describe (by the ACLs and tenants,
// without counting denials: resolving a regex is no request), never the
// security topics but for those who may read them. Nil: every topic.
func (s *Server) regexTopicFilter(cc *clientConn) func(topic string) bool {
	secrets := s.readsSecurityTopics(cc)
	if s.authz == nil && secrets {
		return nil
	}
	principal, host := principalOf(cc)
	return func(topic string) bool {
		if isSecurityTopic(topic) && !secrets {
			return false
		}
		return s.authz == nil || s.authz.Authorize(principal, host, auth.OpDescribe, resTopic, topic)
	}
}

// consumerHeartbeat claims the group id for the consumer protocol (an
// empty classic group is converted; a classic group with members answers
// GROUP_ID_NOT_FOUND, as Kafka does when it does not migrate the group)
// and hands the heartbeat to the coordinator. gmu must be held.
func (s *Server) consumerHeartbeat(now time.Time, p cgParams, meta topicMeta) cgResult {
	if sum, ok := s.groups.Describe(p.Group); ok {
		if len(sum.Members) > 0 {
			return cgError(kerr.GroupIDNotFound.Code, "group "+p.Group+" is not a consumer group")
		}
		s.groups.Delete(p.Group)
	}
	return s.cgroups.Heartbeat(now, p, meta)
}

// validateConsumerHeartbeat checks a heartbeat's fields as Kafka does
// before looking at the group (INVALID_REQUEST with a message).
func validateConsumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (int16, string) {
	bad := func(msg string) (int16, string) { return kerr.InvalidRequest.Code, msg }
	switch {
	case req.Group == "":
		return kerr.InvalidGroupID.Code, "GroupId can't be empty."
	case req.InstanceID != nil && *req.InstanceID == "":
		return bad("InstanceId can't be empty.")
	case req.RackID != nil && *req.RackID == "":
		return bad("RackId can't be empty.")
	case req.Version >= 1 && req.MemberID == "":
		return bad("MemberId can't be empty.")
	case req.MemberEpoch < cgStaticLeaveEpoch:
		return bad("MemberEpoch is invalid.")
	}
	switch req.MemberEpoch {
	case cgJoinEpoch:
		switch {
		case req.RebalanceTimeoutMillis == -1:
			return bad("RebalanceTimeoutMs must be provided in first request.")
		case req.Topics == nil || len(req.Topics) > 0:
			return bad("TopicPartitions must be empty when (re-)joining.")
		case req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
			return bad("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
		}
	case cgStaticLeaveEpoch:
		if req.InstanceID == nil {
			return bad("InstanceId can't be null.")
		}
		fallthrough
	default:
		if req.MemberID == "" {
			return bad("MemberId can't be empty.")
		}
	}
	return 0, ""
}

// topicMeta returns the partition count of every topic of the log. Callers
// hold gmu (the log's locks are taken under it, never the reverse).
func (s *Server) topicMeta() topicMeta {
	names := s.log.Topics()
	meta := make(topicMeta, len(names))
	for _, n := range names {
		if t, err := s.log.Topic(n); err == nil {
			meta[n] = t.NumPartitions()
		}
	}
	return meta
}

// randomUUID returns a random member id in the form Kafka uses (a
// URL-safe base64 UUID).
func randomUUID() string {
	var b [16]byte
	crand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
