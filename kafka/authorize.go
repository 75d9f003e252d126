package kafka

import (
	"context"
	"math"
	"net"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/auth"
)

// Authorisation (Kafka ACLs).
//
// With Config.Authorizer.Enabled every request is checked, before its
// handler runs, for the operations Apache Kafka checks for that API
// (KafkaApis), against the ACLs of the auth.ACLStore the server keeps in
// __sluice_acls. checkRequest holds one function per API. A check either
// denies the whole request (its answer is built here, with the error code
// Kafka returns) or takes out of the request what the principal may not
// touch and amends the handler's answer with an error for each (or, for
// listings, removes what the principal may not describe). Produce and
// Fetch check per partition inside their handlers (startProduce,
// fetchParts), since their requests are pipelined or held in fetch
// sessions. Without an authorizer nothing is checked, as in Kafka.

// The resource types requests name.
const (
	resTopic   = auth.ResourceTopic
	resGroup   = auth.ResourceGroup
	resCluster = auth.ResourceCluster
	resTxnID   = auth.ResourceTransactionalID
)

// authzCheck is what an API's authorisation decided: deny is the whole
// answer (the handler is not called); amend, when set, is applied to the
// handler's answer.
type authzCheck struct {
	deny  kmsg.Response
	amend func(kmsg.Response)
}

// principalOf returns cc's principal and client IP address (as ACL hosts
// name them); a nil cc is an in-process caller treated as ANONYMOUS.
func principalOf(cc *clientConn) (principal, host string) {
	principal = anonymous
	if cc == nil {
		return principal, ""
	}
	if cc.auth != nil {
		principal = cc.auth.principal
	}
	if cc.remote != nil {
		host = cc.remote.String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	return principal, host
}

// authorize reports whether cc's principal may perform op on the named
// resource. Always true without an authorizer. A denial is counted and
// logged.
func (s *Server) authorize(cc *clientConn, op auth.Operation, rt auth.ResourceType, name string) bool {
	if s.authz == nil {
		return true
	}
	principal, host := principalOf(cc)
	if s.authz.Authorize(principal, host, op, rt, name) {
		return true
	}
	s.denied(principal, host, op, rt, name)
	return false
}

// authorizeAny reports whether cc's principal may perform op on some
// resource of type rt (Kafka's authorizeByResourceType).
func (s *Server) authorizeAny(cc *clientConn, op auth.Operation, rt auth.ResourceType) bool {
	if s.authz == nil {
		return true
	}
	principal, host := principalOf(cc)
	if s.authz.AuthorizeAny(principal, host, op, rt) {
		return true
	}
	s.denied(principal, host, op, rt, "*")
	return false
}

func (s *Server) denied(principal, host string, op auth.Operation, rt auth.ResourceType, name string) {
	s.metrics.authzDenied(op.String(), rt.String())
	s.logger.Debug("kafka request not authorized", "principal", principal, "host", host, "operation", op.String(), "resource_type", rt.String(), "resource", name)
}

// authorizeCluster is authorize on the cluster resource.
func (s *Server) authorizeCluster(cc *clientConn, op auth.Operation) bool {
	return s.authorize(cc, op, resCluster, auth.ClusterName)
}

// authorizedOps returns the authorized-operations bit field of ops on the
// resource for cc.
func (s *Server) authorizedOps(cc *clientConn, rt auth.ResourceType, name string, ops ...auth.Operation) int32 {
	var b int32
	for _, op := range ops {
		if s.authz == nil || s.authzQuiet(cc, op, rt, name) {
			b |= 1 << op
		}
	}
	return b
}

// authzQuiet is authorize without counting a denial (for the
// authorized-operations fields, which are information, not requests).
func (s *Server) authzQuiet(cc *clientConn, op auth.Operation, rt auth.ResourceType, name string) bool {
	principal, host := principalOf(cc)
	return s.authz.Authorize(principal, host, op, rt, name)
}

// dispatchAuthorized is dispatch behind the authorizer.
func (s *Server) dispatchAuthorized(ctx context.Context, cc *clientConn, h requestHeader, req kmsg.Request) (kmsg.Response, bool) {
	if s.authz == nil || h.Key == apiKeyApiVersions {
		return s.dispatch(ctx, cc, h, req)
	}
	if !s.versionOK(cc, h) {
		return nil, false
	}
	c := s.checkRequest(cc, req)
	if c.deny != nil {
		return c.deny, true
	}
	resp, ok := s.dispatch(ctx, cc, h, req)
	if ok && c.amend != nil && resp != nil {
		c.amend(resp)
	}
	return resp, ok
}

// checkRequest runs the API's authorisation check. An API with no rule
// (none is served: TestAuthzRulesCoverEveryAPI) is refused as a whole.
func (s *Server) checkRequest(cc *clientConn, req kmsg.Request) authzCheck {
	if rule, ok := authzRules[req.Key()]; ok {
		return rule(s, cc, req)
	}
	if _, ok := authzElsewhere[req.Key()]; ok {
		return authzCheck{}
	}
	principal, host := principalOf(cc)
	s.denied(principal, host, auth.OpUnknown, resCluster, auth.ClusterName)
	return authzCheck{deny: setTopError(req.ResponseKind(), clusterAuthFailed)}
}

// authzRule is the check of one API.
type authzRule func(s *Server, cc *clientConn, req kmsg.Request) authzCheck

// rule adapts a check of one request type to an authzRule.
func rule[R kmsg.Request](check func(s *Server, cc *clientConn, req R) authzCheck) authzRule {
	return func(s *Server, cc *clientConn, req kmsg.Request) authzCheck { return check(s, cc, req.(R)) }
}

// authzRules holds, per API key, the operations Kafka checks for it (each
// function's comment says which, and with what error code).
var authzRules = map[int16]authzRule{
	apiKeyMetadata:             rule((*Server).authzMetadata),
	apiKeyListOffsets:          rule((*Server).authzListOffsets),
	apiKeyOffsetForLeaderEpoch: rule((*Server).authzOffsetForLeaderEpoch),
	apiKeyOffsetCommit:         rule((*Server).authzOffsetCommit),
	apiKeyOffsetFetch:          rule((*Server).authzOffsetFetch),
	apiKeyFindCoordinator:      rule((*Server).authzFindCoordinator),
	apiKeyJoinGroup: rule(func(s *Server, cc *clientConn, r *kmsg.JoinGroupRequest) authzCheck {
		return s.groupOnly(cc, r, r.Group, auth.OpRead)
	}),
	apiKeySyncGroup: rule(func(s *Server, cc *clientConn, r *kmsg.SyncGroupRequest) authzCheck {
		return s.groupOnly(cc, r, r.Group, auth.OpRead)
	}),
	apiKeyHeartbeat: rule(func(s *Server, cc *clientConn, r *kmsg.HeartbeatRequest) authzCheck {
		return s.groupOnly(cc, r, r.Group, auth.OpRead)
	}),
	apiKeyLeaveGroup: rule(func(s *Server, cc *clientConn, r *kmsg.LeaveGroupRequest) authzCheck {
		return s.groupOnly(cc, r, r.Group, auth.OpRead)
	}),
	apiKeyConsumerGroupHeartbeat: rule((*Server).authzConsumerGroupHeartbeat),
	apiKeyConsumerGroupDescribe:  rule((*Server).authzConsumerGroupDescribe),
	apiKeyDescribeGroups:         rule((*Server).authzDescribeGroups),
	apiKeyListGroups:             rule((*Server).authzListGroups),
	apiKeyDeleteGroups:           rule((*Server).authzDeleteGroups),
	apiKeyOffsetDelete:           rule((*Server).authzOffsetDelete),
	apiKeyCreateTopics:           rule((*Server).authzCreateTopics),
	apiKeyDeleteTopics:           rule((*Server).authzDeleteTopics),
	apiKeyDeleteRecords:          rule((*Server).authzDeleteRecords),
	apiKeyCreatePartitions:       rule((*Server).authzCreatePartitions),
	apiKeyDescribeConfigs:        rule((*Server).authzDescribeConfigs),
	apiKeyAlterConfigs:           rule((*Server).authzAlterConfigs),
	apiKeyIncrementalAlter:       rule((*Server).authzIncrementalAlterConfigs),
	apiKeyInitProducerID:         rule((*Server).authzInitProducerID),
	apiKeyAddPartitionsToTxn:     rule((*Server).authzAddPartitionsToTxn),
	apiKeyAddOffsetsToTxn:        rule((*Server).authzAddOffsetsToTxn),
	apiKeyEndTxn: rule(func(s *Server, cc *clientConn, r *kmsg.EndTxnRequest) authzCheck {
		return s.txnOnly(cc, r, r.TransactionalID)
	}),
	apiKeyTxnOffsetCommit:      rule((*Server).authzTxnOffsetCommit),
	apiKeyDescribeLogDirs:      rule((*Server).authzDescribeLogDirs),
	apiKeyDescribeCluster:      rule((*Server).authzDescribeCluster),
	apiKeyDescribeProducers:    rule((*Server).authzDescribeProducers),
	apiKeyListTransactions:     rule((*Server).authzListTransactions),
	apiKeyDescribeTransactions: rule((*Server).authzDescribeTransactions),
	// The cluster-wide admin APIs: DESCRIBE or DESCRIBE_CONFIGS to read,
	// ALTER or ALTER_CONFIGS to change, else CLUSTER_AUTHORIZATION_FAILED.
	apiKeyDescribeUserSCRAMCreds: clusterRule(auth.OpDescribe),
	apiKeyAlterUserSCRAMCreds:    clusterRule(auth.OpAlter),
	apiKeyDescribeACLs:           clusterRule(auth.OpDescribe),
	apiKeyCreateACLs:             clusterRule(auth.OpAlter),
	apiKeyDeleteACLs:             clusterRule(auth.OpAlter),
	apiKeyDescribeClientQuotas:   clusterRule(auth.OpDescribeConfigs),
	apiKeyAlterClientQuotas:      clusterRule(auth.OpAlterConfigs),
}

// authzElsewhere names the APIs without a rule in authzRules, and why.
var authzElsewhere = map[int16]string{
	apiKeyProduce:          "per partition in startProduce (pipelined requests)",
	apiKeyFetch:            "per partition in fetchParts (fetch sessions hold partitions)",
	apiKeyApiVersions:      "needs no authorisation",
	apiKeySASLHandshake:    "the authentication exchange itself",
	apiKeySASLAuthenticate: "the authentication exchange itself",
}

// clusterRule is clusterOnly as a rule.
func clusterRule(op auth.Operation) authzRule {
	return func(s *Server, cc *clientConn, req kmsg.Request) authzCheck { return s.clusterOnly(cc, req, op) }
}

// splitBy splits xs into what keep accepts and the rest.
func splitBy[T any](xs []T, keep func(T) bool) (kept, dropped []T) {
	if xs == nil {
		return nil, nil
	}
	kept = make([]T, 0, len(xs))
	for _, x := range xs {
		if keep(x) {
			kept = append(kept, x)
		} else {
			dropped = append(dropped, x)
		}
	}
	return kept, dropped
}

// topicAllowed returns a keep function for splitBy over topic names.
func (s *Server) topicAllowed(cc *clientConn, op auth.Operation) func(string) bool {
	if s.authz == nil {
		return func(string) bool { return true }
	}
	memo := map[string]bool{}
	return func(topic string) bool {
		ok, seen := memo[topic]
		if !seen {
			ok = s.authorize(cc, op, resTopic, topic)
			memo[topic] = ok
		}
		return ok
	}
}

// denyTopics takes out of *topics those whose name the principal may not
// perform op on, and amends the handler's answer with answer(resp, t) for
// each: the shape of every request that names topics (and their
// partitions) and answers per topic.
func denyTopics[T any, Resp kmsg.Response](s *Server, cc *clientConn, op auth.Operation, topics *[]T, name func(T) string, answer func(Resp, T)) authzCheck {
	allowed := s.topicAllowed(cc, op)
	var denied []T
	*topics, denied = splitBy(*topics, func(t T) bool { return allowed(name(t)) })
	if len(denied) == 0 {
		return authzCheck{}
	}
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(Resp)
		for _, t := range denied {
			answer(resp, t)
		}
	}}
}

// denyGroups is denyTopics for the requests that list groups.
func denyGroups[Resp kmsg.Response](s *Server, cc *clientConn, op auth.Operation, groups *[]string, answer func(Resp, string)) authzCheck {
	var denied []string
	*groups, denied = splitBy(*groups, func(g string) bool { return s.authorize(cc, op, resGroup, g) })
	if len(denied) == 0 {
		return authzCheck{}
	}
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(Resp)
		for _, g := range denied {
			answer(resp, g)
		}
	}}
}

var (
	topicAuthFailed   = kerr.TopicAuthorizationFailed.Code
	groupAuthFailed   = kerr.GroupAuthorizationFailed.Code
	txnAuthFailed     = kerr.TransactionalIDAuthorizationFailed.Code
	clusterAuthFailed = kerr.ClusterAuthorizationFailed.Code
)

// groupOps are the operations Kafka reports on a group.
var groupOps = []auth.Operation{auth.OpRead, auth.OpDescribe, auth.OpDelete}

// topicOps are the operations Kafka reports on a topic.
var topicOps = []auth.Operation{auth.OpRead, auth.OpWrite, auth.OpCreate, auth.OpDelete, auth.OpAlter, auth.OpDescribe, auth.OpDescribeConfigs, auth.OpAlterConfigs}

// authzMetadata: DESCRIBE on each topic. Topics asked for by name that
// the principal may not describe answer TOPIC_AUTHORIZATION_FAILED; a
// listing of every topic leaves them out. Auto-creating a topic needs
// CREATE on the cluster or the topic.
func (s *Server) authzMetadata(cc *clientConn, req *kmsg.MetadataRequest) authzCheck {
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	describe := s.topicAllowed(cc, auth.OpDescribe)
	var deniedTopics []kmsg.MetadataRequestTopic
	if !all {
		autoCreate := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
		createCluster := autoCreate && s.authzQuiet(cc, auth.OpCreate, resCluster, auth.ClusterName)
		req.Topics, deniedTopics = splitBy(req.Topics, func(t kmsg.MetadataRequestTopic) bool {
			if t.Topic == nil {
				n := s.topicByID(t.TopicID)
				return n == "" || describe(n)
			}
			if !describe(*t.Topic) {
				return false
			}
			if autoCreate && !s.createCovers(createCluster, *t.Topic) {
				if _, err := s.log.Topic(*t.Topic); err != nil {
					return s.authorize(cc, auth.OpCreate, resTopic, *t.Topic)
				}
			}
			return true
		})
	}
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.MetadataResponse)
		if all {
			// Leaving a topic out of a listing is no refusal: not counted
			// or logged (Kafka logs denials only for topics asked for).
			resp.Topics, _ = splitBy(resp.Topics, func(t kmsg.MetadataResponseTopic) bool {
				return t.Topic == nil || s.authzQuiet(cc, auth.OpDescribe, resTopic, *t.Topic)
			})
		}
		for _, t := range deniedTopics {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID, mt.ErrorCode = t.Topic, t.TopicID, topicAuthFailed
			if t.Topic != nil {
				mt.IsInternal = isCoordinatorTopic(*t.Topic)
				mt.TopicID = [16]byte{}
			}
			resp.Topics = append(resp.Topics, mt)
		}
		if req.Version >= 8 && req.IncludeTopicAuthorizedOperations {
			for i := range resp.Topics {
				if t := &resp.Topics[i]; t.ErrorCode == 0 && t.Topic != nil {
					t.AuthorizedOperations = s.authorizedOps(cc, resTopic, *t.Topic, topicOps...)
				}
			}
		}
	}}
}

// authzListOffsets: DESCRIBE on each topic.
func (s *Server) authzListOffsets(cc *clientConn, req *kmsg.ListOffsetsRequest) authzCheck {
	return denyTopics(s, cc, auth.OpDescribe, &req.Topics, func(t kmsg.ListOffsetsRequestTopic) string { return t.Topic },
		func(resp *kmsg.ListOffsetsResponse, t kmsg.ListOffsetsRequestTopic) {
			ot := kmsg.NewListOffsetsResponseTopic()
			ot.Topic = t.Topic
			for _, p := range t.Partitions {
				op := kmsg.NewListOffsetsResponseTopicPartition()
				op.Partition, op.ErrorCode, op.Timestamp, op.Offset, op.LeaderEpoch = p.Partition, topicAuthFailed, -1, -1, -1
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		})
}

// authzOffsetForLeaderEpoch: DESCRIBE on each topic (a consumer's
// request; there are no followers).
func (s *Server) authzOffsetForLeaderEpoch(cc *clientConn, req *kmsg.OffsetForLeaderEpochRequest) authzCheck {
	return denyTopics(s, cc, auth.OpDescribe, &req.Topics, func(t kmsg.OffsetForLeaderEpochRequestTopic) string { return t.Topic },
		func(resp *kmsg.OffsetForLeaderEpochResponse, t kmsg.OffsetForLeaderEpochRequestTopic) {
			ot := kmsg.NewOffsetForLeaderEpochResponseTopic()
			ot.Topic = t.Topic
			for _, p := range t.Partitions {
				op := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				op.Partition, op.ErrorCode, op.LeaderEpoch, op.EndOffset = p.Partition, topicAuthFailed, -1, -1
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		})
}

// authzOffsetCommit: READ on the group (every partition answers
// GROUP_AUTHORIZATION_FAILED), then READ on each topic.
func (s *Server) authzOffsetCommit(cc *clientConn, req *kmsg.OffsetCommitRequest) authzCheck {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	answer := func(topics []kmsg.OffsetCommitRequestTopic, code int16) {
		for _, t := range topics {
			ot := kmsg.NewOffsetCommitResponseTopic()
			ot.Topic = t.Topic
			for _, p := range t.Partitions {
				op := kmsg.NewOffsetCommitResponseTopicPartition()
				op.Partition, op.ErrorCode = p.Partition, code
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
	}
	if !s.authorize(cc, auth.OpRead, resGroup, req.Group) {
		answer(req.Topics, groupAuthFailed)
		return authzCheck{deny: resp}
	}
	allowed := s.topicAllowed(cc, auth.OpRead)
	var denied []kmsg.OffsetCommitRequestTopic
	req.Topics, denied = splitBy(req.Topics, func(t kmsg.OffsetCommitRequestTopic) bool { return allowed(t.Topic) })
	if len(denied) == 0 {
		return authzCheck{}
	}
	return authzCheck{amend: func(r kmsg.Response) {
		resp = r.(*kmsg.OffsetCommitResponse)
		answer(denied, topicAuthFailed)
	}}
}

// authzOffsetFetch: READ on each group (GROUP_AUTHORIZATION_FAILED), then
// READ on each topic asked for (TOPIC_AUTHORIZATION_FAILED); a fetch of
// every topic leaves out those the principal may not read.
func (s *Server) authzOffsetFetch(cc *clientConn, req *kmsg.OffsetFetchRequest) authzCheck {
	allowed := s.topicAllowed(cc, auth.OpRead)
	if req.Version < 8 {
		return s.authzOffsetFetchOne(cc, req, allowed)
	}
	var deniedGroups []string
	deniedTopics := map[string][]kmsg.OffsetFetchRequestGroupTopic{}
	allTopics := map[string]bool{}
	var kept []kmsg.OffsetFetchRequestGroup
	for _, g := range req.Groups {
		if !s.authorize(cc, auth.OpRead, resGroup, g.Group) {
			deniedGroups = append(deniedGroups, g.Group)
			continue
		}
		if g.Topics == nil {
			allTopics[g.Group] = true
		}
		var denied []kmsg.OffsetFetchRequestGroupTopic
		g.Topics, denied = splitBy(g.Topics, func(t kmsg.OffsetFetchRequestGroupTopic) bool { return allowed(t.Topic) })
		if len(denied) > 0 {
			deniedTopics[g.Group] = denied
		}
		kept = append(kept, g)
	}
	if len(deniedGroups) == 0 && len(deniedTopics) == 0 && len(allTopics) == 0 {
		return authzCheck{}
	}
	req.Groups = kept
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.OffsetFetchResponse)
		for i := range resp.Groups {
			g := &resp.Groups[i]
			if allTopics[g.Group] {
				g.Topics, _ = splitBy(g.Topics, func(t kmsg.OffsetFetchResponseGroupTopic) bool { return allowed(t.Topic) })
			}
			for _, t := range deniedTopics[g.Group] {
				ot := kmsg.NewOffsetFetchResponseGroupTopic()
				ot.Topic = t.Topic
				for _, p := range t.Partitions {
					op := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					op.Partition, op.Offset, op.LeaderEpoch, op.ErrorCode = p, -1, -1, topicAuthFailed
					ot.Partitions = append(ot.Partitions, op)
				}
				g.Topics = append(g.Topics, ot)
			}
		}
		for _, name := range deniedGroups {
			og := kmsg.NewOffsetFetchResponseGroup()
			og.Group, og.ErrorCode = name, groupAuthFailed
			resp.Groups = append(resp.Groups, og)
		}
	}}
}

// authzOffsetFetchOne is authzOffsetFetch for v0-7 (one group).
func (s *Server) authzOffsetFetchOne(cc *clientConn, req *kmsg.OffsetFetchRequest, allowed func(string) bool) authzCheck {
	topicAnswer := func(t kmsg.OffsetFetchRequestTopic, code int16) kmsg.OffsetFetchResponseTopic {
		ot := kmsg.NewOffsetFetchResponseTopic()
		ot.Topic = t.Topic
		for _, p := range t.Partitions {
			op := kmsg.NewOffsetFetchResponseTopicPartition()
			op.Partition, op.Offset, op.LeaderEpoch, op.ErrorCode = p, -1, -1, code
			ot.Partitions = append(ot.Partitions, op)
		}
		return ot
	}
	if !s.authorize(cc, auth.OpRead, resGroup, req.Group) {
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		if req.Version >= 2 {
			resp.ErrorCode = groupAuthFailed
		}
		for _, t := range req.Topics {
			resp.Topics = append(resp.Topics, topicAnswer(t, groupAuthFailed))
		}
		return authzCheck{deny: resp}
	}
	all := req.Topics == nil
	var denied []kmsg.OffsetFetchRequestTopic
	req.Topics, denied = splitBy(req.Topics, func(t kmsg.OffsetFetchRequestTopic) bool { return allowed(t.Topic) })
	if !all && len(denied) == 0 {
		return authzCheck{}
	}
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.OffsetFetchResponse)
		if all {
			resp.Topics, _ = splitBy(resp.Topics, func(t kmsg.OffsetFetchResponseTopic) bool { return allowed(t.Topic) })
		}
		for _, t := range denied {
			resp.Topics = append(resp.Topics, topicAnswer(t, topicAuthFailed))
		}
	}}
}

// coordinatorAllowed checks DESCRIBE on a FindCoordinator key: a group
// (key type 0) or a transactional id (1). It returns the error code.
func (s *Server) coordinatorAllowed(cc *clientConn, keyType int8, key string) int16 {
	switch keyType {
	case 0:
		if !s.authorize(cc, auth.OpDescribe, resGroup, key) {
			return groupAuthFailed
		}
	case 1:
		if !s.authorize(cc, auth.OpDescribe, resTxnID, key) {
			return txnAuthFailed
		}
	}
	return 0
}

// authzFindCoordinator: DESCRIBE on the group or transactional id.
func (s *Server) authzFindCoordinator(cc *clientConn, req *kmsg.FindCoordinatorRequest) authzCheck {
	if req.Version < 4 {
		if code := s.coordinatorAllowed(cc, req.CoordinatorType, req.CoordinatorKey); code != 0 {
			resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
			resp.ErrorCode, resp.NodeID, resp.Port = code, -1, -1
			return authzCheck{deny: resp}
		}
		return authzCheck{}
	}
	codes := map[string]int16{}
	var denied []string
	req.CoordinatorKeys, denied = splitBy(req.CoordinatorKeys, func(k string) bool {
		codes[k] = s.coordinatorAllowed(cc, req.CoordinatorType, k)
		return codes[k] == 0
	})
	if len(denied) == 0 {
		return authzCheck{}
	}
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.FindCoordinatorResponse)
		for _, k := range denied {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key, c.NodeID, c.Port, c.ErrorCode = k, -1, -1, codes[k]
			resp.Coordinators = append(resp.Coordinators, c)
		}
	}}
}

// setTopError sets the top-level error code of the group and transaction
// responses answered whole.
func setTopError(resp kmsg.Response, code int16) kmsg.Response {
	switch r := resp.(type) {
	case *kmsg.JoinGroupResponse:
		r.ErrorCode = code
	case *kmsg.SyncGroupResponse:
		r.ErrorCode = code
	case *kmsg.HeartbeatResponse:
		r.ErrorCode = code
	case *kmsg.LeaveGroupResponse:
		r.ErrorCode = code
	case *kmsg.ConsumerGroupHeartbeatResponse:
		r.ErrorCode = code
	case *kmsg.EndTxnResponse:
		r.ErrorCode = code
	case *kmsg.AddOffsetsToTxnResponse:
		r.ErrorCode = code
	case *kmsg.InitProducerIDResponse:
		r.ErrorCode, r.ProducerID, r.ProducerEpoch = code, -1, -1
	case *kmsg.OffsetDeleteResponse:
		r.ErrorCode = code
	case *kmsg.DescribeUserSCRAMCredentialsResponse:
		r.ErrorCode = code
	case *kmsg.DescribeACLsResponse:
		r.ErrorCode = code
	case *kmsg.DescribeLogDirsResponse:
		r.ErrorCode = code
	case *kmsg.DescribeClientQuotasResponse:
		r.ErrorCode = code
	}
	return resp
}

// groupOnly: op on the group, or the whole request answers
// GROUP_AUTHORIZATION_FAILED (JoinGroup, SyncGroup, Heartbeat, LeaveGroup).
func (s *Server) groupOnly(cc *clientConn, req kmsg.Request, group string, op auth.Operation) authzCheck {
	if s.authorize(cc, op, resGroup, group) {
		return authzCheck{}
	}
	return authzCheck{deny: setTopError(req.ResponseKind(), groupAuthFailed)}
}

// txnOnly: WRITE on the transactional id, or the whole request answers
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (EndTxn).
func (s *Server) txnOnly(cc *clientConn, req kmsg.Request, id string) authzCheck {
	if s.authorize(cc, auth.OpWrite, resTxnID, id) {
		return authzCheck{}
	}
	return authzCheck{deny: setTopError(req.ResponseKind(), txnAuthFailed)}
}

// authzConsumerGroupHeartbeat: READ on the group, and DESCRIBE on every
// topic the member subscribes to by name (TOPIC_AUTHORIZATION_FAILED), as
// Kafka's KIP-848 coordinator checks.
func (s *Server) authzConsumerGroupHeartbeat(cc *clientConn, req *kmsg.ConsumerGroupHeartbeatRequest) authzCheck {
	if !s.authorize(cc, auth.OpRead, resGroup, req.Group) {
		return authzCheck{deny: setTopError(req.ResponseKind(), groupAuthFailed)}
	}
	describe := s.topicAllowed(cc, auth.OpDescribe)
	for _, t := range req.SubscribedTopicNames {
		if !describe(t) {
			resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			resp.ErrorCode = topicAuthFailed
			resp.ErrorMessage = kmsg.StringPtr("not authorized to describe subscribed topic " + t)
			return authzCheck{deny: resp}
		}
	}
	return authzCheck{}
}

// groupsCheck splits groups by DESCRIBE (or op) and returns the denied.
func (s *Server) groupsCheck(cc *clientConn, groups *[]string, op auth.Operation) []string {
	var denied []string
	*groups, denied = splitBy(*groups, func(g string) bool { return s.authorize(cc, op, resGroup, g) })
	return denied
}

// authzConsumerGroupDescribe: DESCRIBE on each group; authorized
// operations reflect the ACLs; a group whose members subscribe to or are
// assigned a topic the principal may not describe answers
// TOPIC_AUTHORIZATION_FAILED without its members, as Kafka's (else a
// group shared by principals shows each the others' topics).
func (s *Server) authzConsumerGroupDescribe(cc *clientConn, req *kmsg.ConsumerGroupDescribeRequest) authzCheck {
	c := denyGroups(s, cc, auth.OpDescribe, &req.Groups, func(resp *kmsg.ConsumerGroupDescribeResponse, g string) {
		og := kmsg.NewConsumerGroupDescribeResponseGroup()
		og.Group, og.ErrorCode, og.AuthorizedOperations = g, groupAuthFailed, math.MinInt32
		resp.Groups = append(resp.Groups, og)
	})
	if s.authz == nil {
		return c
	}
	deny := c.amend
	describe := s.topicAllowed(cc, auth.OpDescribe)
	c.amend = func(r kmsg.Response) {
		resp := r.(*kmsg.ConsumerGroupDescribeResponse)
		for i := range resp.Groups {
			g := &resp.Groups[i]
			if g.ErrorCode == 0 && !groupTopicsAllowed(g, describe) {
				g.ErrorCode = topicAuthFailed
				g.ErrorMessage = kmsg.StringPtr("The described group uses topics that the client is not authorized to describe.")
				g.Members = nil
			}
			if g.ErrorCode == 0 && req.IncludeAuthorizedOperations {
				g.AuthorizedOperations = s.authorizedOps(cc, resGroup, g.Group, groupOps...)
			}
		}
		if deny != nil {
			deny(r)
		}
	}
	return c
}

// groupTopicsAllowed reports whether describe allows every topic the
// group's members subscribe to by name or hold in their assignment and
// target.
func groupTopicsAllowed(g *kmsg.ConsumerGroupDescribeResponseGroup, describe func(string) bool) bool {
	denied := func(t string) bool { return !describe(t) }
	for _, m := range g.Members {
		if slices.ContainsFunc(m.SubscribedTopics, denied) {
			return false
		}
		for _, a := range []kmsg.Assignment{m.Assignment, m.TargetAssignment} {
			for _, tp := range a.TopicPartitions {
				if denied(tp.Topic) {
					return false
				}
			}
		}
	}
	return true
}

// authzDescribeGroups: DESCRIBE on each group; authorized operations
// reflect the ACLs.
func (s *Server) authzDescribeGroups(cc *clientConn, req *kmsg.DescribeGroupsRequest) authzCheck {
	denied := s.groupsCheck(cc, &req.Groups, auth.OpDescribe)
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.DescribeGroupsResponse)
		if req.IncludeAuthorizedOperations {
			for i := range resp.Groups {
				g := &resp.Groups[i]
				g.AuthorizedOperations = s.authorizedOps(cc, resGroup, g.Group, groupOps...)
			}
		}
		for _, g := range denied {
			og := kmsg.NewDescribeGroupsResponseGroup()
			og.Group, og.ErrorCode = g, groupAuthFailed
			resp.Groups = append(resp.Groups, og)
		}
	}}
}

// authzListGroups: DESCRIBE on the cluster lists every group; otherwise
// only the groups the principal may describe.
func (s *Server) authzListGroups(cc *clientConn, _ *kmsg.ListGroupsRequest) authzCheck {
	if s.authzQuiet(cc, auth.OpDescribe, resCluster, auth.ClusterName) {
		return authzCheck{}
	}
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.ListGroupsResponse)
		resp.Groups, _ = splitBy(resp.Groups, func(g kmsg.ListGroupsResponseGroup) bool {
			return s.authzQuiet(cc, auth.OpDescribe, resGroup, g.Group)
		})
	}}
}

// authzDeleteGroups: DELETE on each group.
func (s *Server) authzDeleteGroups(cc *clientConn, req *kmsg.DeleteGroupsRequest) authzCheck {
	return denyGroups(s, cc, auth.OpDelete, &req.Groups, func(resp *kmsg.DeleteGroupsResponse, g string) {
		og := kmsg.NewDeleteGroupsResponseGroup()
		og.Group, og.ErrorCode = g, groupAuthFailed
		resp.Groups = append(resp.Groups, og)
	})
}

// authzOffsetDelete: DELETE on the group (the whole request), READ on
// each topic.
func (s *Server) authzOffsetDelete(cc *clientConn, req *kmsg.OffsetDeleteRequest) authzCheck {
	if !s.authorize(cc, auth.OpDelete, resGroup, req.Group) {
		return authzCheck{deny: setTopError(req.ResponseKind(), groupAuthFailed)}
	}
	return denyTopics(s, cc, auth.OpRead, &req.Topics, func(t kmsg.OffsetDeleteRequestTopic) string { return t.Topic },
		func(resp *kmsg.OffsetDeleteResponse, t kmsg.OffsetDeleteRequestTopic) {
			ot := kmsg.NewOffsetDeleteResponseTopic()
			ot.Topic = t.Topic
			for _, p := range t.Partitions {
				op := kmsg.NewOffsetDeleteResponseTopicPartition()
				op.Partition, op.ErrorCode = p.Partition, topicAuthFailed
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		})
}

// authzCreateTopics: CREATE on the cluster, or on each topic; in a
// tenant's namespace only the latter (createCovers).
func (s *Server) authzCreateTopics(cc *clientConn, req *kmsg.CreateTopicsRequest) authzCheck {
	cluster := s.authzQuiet(cc, auth.OpCreate, resCluster, auth.ClusterName)
	var denied []kmsg.CreateTopicsRequestTopic
	req.Topics, denied = splitBy(req.Topics, func(t kmsg.CreateTopicsRequestTopic) bool {
		return s.createCovers(cluster, t.Topic) || s.authorize(cc, auth.OpCreate, resTopic, t.Topic)
	})
	if len(denied) == 0 {
		return authzCheck{}
	}
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.CreateTopicsResponse)
		for _, t := range denied {
			ot := kmsg.NewCreateTopicsResponseTopic()
			ot.Topic, ot.ErrorCode, ot.NumPartitions, ot.ReplicationFactor = t.Topic, topicAuthFailed, -1, -1
			ot.ErrorMessage = kmsg.StringPtr("Authorization failed.")
			resp.Topics = append(resp.Topics, ot)
		}
	}}
}

// createCovers reports whether CREATE on the cluster (cluster: the
// principal has it) lets the principal create the topic: not in a
// tenant's namespace, where only CREATE on the topic does (the members'
// implicit ALLOW, or an ACL naming the topic), so that a cluster-wide
// grant does not reach into tenants. Kafka has no tenants.
func (s *Server) createCovers(cluster bool, topic string) bool {
	return cluster && !s.tenants.t.Owns(topic)
}

// authzDeleteTopics: DELETE on each topic (by name, or by the id's name).
func (s *Server) authzDeleteTopics(cc *clientConn, req *kmsg.DeleteTopicsRequest) authzCheck {
	allowed := s.topicAllowed(cc, auth.OpDelete)
	var deniedNames []string
	var deniedTopics []kmsg.DeleteTopicsRequestTopic
	req.TopicNames, deniedNames = splitBy(req.TopicNames, allowed)
	req.Topics, deniedTopics = splitBy(req.Topics, func(t kmsg.DeleteTopicsRequestTopic) bool {
		if t.Topic != nil {
			return allowed(*t.Topic)
		}
		n := s.topicByID(t.TopicID)
		return n == "" || allowed(n) // an unknown id answers UNKNOWN_TOPIC_ID
	})
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.DeleteTopicsResponse)
		add := func(name *string, id [16]byte) {
			ot := kmsg.NewDeleteTopicsResponseTopic()
			ot.Topic, ot.TopicID, ot.ErrorCode = name, id, topicAuthFailed
			resp.Topics = append(resp.Topics, ot)
		}
		for _, n := range deniedNames {
			add(kmsg.StringPtr(n), [16]byte{})
		}
		for _, t := range deniedTopics {
			add(t.Topic, t.TopicID)
		}
	}}
}

// authzDeleteRecords: DELETE on each topic.
func (s *Server) authzDeleteRecords(cc *clientConn, req *kmsg.DeleteRecordsRequest) authzCheck {
	return denyTopics(s, cc, auth.OpDelete, &req.Topics, func(t kmsg.DeleteRecordsRequestTopic) string { return t.Topic },
		func(resp *kmsg.DeleteRecordsResponse, t kmsg.DeleteRecordsRequestTopic) {
			ot := kmsg.NewDeleteRecordsResponseTopic()
			ot.Topic = t.Topic
			for _, p := range t.Partitions {
				op := kmsg.NewDeleteRecordsResponseTopicPartition()
				op.Partition, op.LowWatermark, op.ErrorCode = p.Partition, -1, topicAuthFailed
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		})
}

// authzCreatePartitions: ALTER on each topic.
func (s *Server) authzCreatePartitions(cc *clientConn, req *kmsg.CreatePartitionsRequest) authzCheck {
	return denyTopics(s, cc, auth.OpAlter, &req.Topics, func(t kmsg.CreatePartitionsRequestTopic) string { return t.Topic },
		func(resp *kmsg.CreatePartitionsResponse, t kmsg.CreatePartitionsRequestTopic) {
			ot := kmsg.NewCreatePartitionsResponseTopic()
			ot.Topic, ot.ErrorCode = t.Topic, topicAuthFailed
			resp.Topics = append(resp.Topics, ot)
		})
}

// configAllowed checks op (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a config
// resource: a topic, the broker (the cluster resource) or a group; it
// returns the error code.
func (s *Server) configAllowed(cc *clientConn, op auth.Operation, typ kmsg.ConfigResourceType, name string) int16 {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if !s.authorize(cc, op, resTopic, name) {
			return topicAuthFailed
		}
	case kmsg.ConfigResourceTypeGroupConfig:
		if !s.authorize(cc, op, resGroup, name) {
			return groupAuthFailed
		}
	default: // broker, broker logger, client metrics: cluster resources
		if !s.authorizeCluster(cc, op) {
			return clusterAuthFailed
		}
	}
	return 0
}

// deniedConfig is a config resource a principal may not touch, with the
// error its answer carries.
type deniedConfig struct {
	typ  kmsg.ConfigResourceType
	name string
	code int16
}

// splitConfigs keeps the config resources cc may perform op on and returns
// the others with their error codes (the three config APIs share it).
func splitConfigs[R any](s *Server, cc *clientConn, op auth.Operation, rs []R, id func(R) (kmsg.ConfigResourceType, string)) ([]R, []deniedConfig) {
	var denied []deniedConfig
	kept, _ := splitBy(rs, func(r R) bool {
		typ, name := id(r)
		if code := s.configAllowed(cc, op, typ, name); code != 0 {
			denied = append(denied, deniedConfig{typ, name, code})
			return false
		}
		return true
	})
	return kept, denied
}

// authzDescribeConfigs: DESCRIBE_CONFIGS on each resource.
func (s *Server) authzDescribeConfigs(cc *clientConn, req *kmsg.DescribeConfigsRequest) authzCheck {
	var denied []deniedConfig
	req.Resources, denied = splitConfigs(s, cc, auth.OpDescribeConfigs, req.Resources, func(r kmsg.DescribeConfigsRequestResource) (kmsg.ConfigResourceType, string) {
		return r.ResourceType, r.ResourceName
	})
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.DescribeConfigsResponse)
		for _, d := range denied {
			or := kmsg.NewDescribeConfigsResponseResource()
			or.ResourceType, or.ResourceName, or.ErrorCode = d.typ, d.name, d.code
			resp.Resources = append(resp.Resources, or)
		}
	}}
}

// authzAlterConfigs: ALTER_CONFIGS on each resource.
func (s *Server) authzAlterConfigs(cc *clientConn, req *kmsg.AlterConfigsRequest) authzCheck {
	var denied []deniedConfig
	req.Resources, denied = splitConfigs(s, cc, auth.OpAlterConfigs, req.Resources, func(r kmsg.AlterConfigsRequestResource) (kmsg.ConfigResourceType, string) {
		return r.ResourceType, r.ResourceName
	})
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.AlterConfigsResponse)
		for _, d := range denied {
			or := kmsg.NewAlterConfigsResponseResource()
			or.ResourceType, or.ResourceName, or.ErrorCode = d.typ, d.name, d.code
			resp.Resources = append(resp.Resources, or)
		}
	}}
}

// authzIncrementalAlterConfigs: ALTER_CONFIGS on each resource.
func (s *Server) authzIncrementalAlterConfigs(cc *clientConn, req *kmsg.IncrementalAlterConfigsRequest) authzCheck {
	var denied []deniedConfig
	req.Resources, denied = splitConfigs(s, cc, auth.OpAlterConfigs, req.Resources, func(r kmsg.IncrementalAlterConfigsRequestResource) (kmsg.ConfigResourceType, string) {
		return r.ResourceType, r.ResourceName
	})
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.IncrementalAlterConfigsResponse)
		for _, d := range denied {
			or := kmsg.NewIncrementalAlterConfigsResponseResource()
			or.ResourceType, or.ResourceName, or.ErrorCode = d.typ, d.name, d.code
			resp.Resources = append(resp.Resources, or)
		}
	}}
}

// authzInitProducerID: WRITE on the transactional id; an idempotent
// producer (no transactional id) needs IDEMPOTENT_WRITE on the cluster or
// WRITE on some topic (KIP-679), else CLUSTER_AUTHORIZATION_FAILED.
func (s *Server) authzInitProducerID(cc *clientConn, req *kmsg.InitProducerIDRequest) authzCheck {
	if req.TransactionalID != nil {
		return s.txnOnly(cc, req, *req.TransactionalID)
	}
	if s.authzQuiet(cc, auth.OpIdempotentWrite, resCluster, auth.ClusterName) || s.authorizeAny(cc, auth.OpWrite, resTopic) {
		return authzCheck{}
	}
	return authzCheck{deny: setTopError(req.ResponseKind(), clusterAuthFailed)}
}

// authzAddPartitionsToTxn (v0-3): WRITE on the transactional id (every
// partition answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED), then WRITE on
// each topic: if any is refused nothing is added, the refused topics
// answering TOPIC_AUTHORIZATION_FAILED, unknown ones
// UNKNOWN_TOPIC_OR_PARTITION and the rest OPERATION_NOT_ATTEMPTED.
func (s *Server) authzAddPartitionsToTxn(cc *clientConn, req *kmsg.AddPartitionsToTxnRequest) authzCheck {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	answer := func(code func(topic string) int16) authzCheck {
		for _, t := range req.Topics {
			ot := kmsg.NewAddPartitionsToTxnResponseTopic()
			ot.Topic = t.Topic
			c := code(t.Topic)
			for _, p := range t.Partitions {
				op := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				op.Partition, op.ErrorCode = p, c
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
		return authzCheck{deny: resp}
	}
	if !s.authorize(cc, auth.OpWrite, resTxnID, req.TransactionalID) {
		return answer(func(string) int16 { return txnAuthFailed })
	}
	allowed := s.topicAllowed(cc, auth.OpWrite)
	refused := false
	for _, t := range req.Topics {
		refused = !allowed(t.Topic) || refused
	}
	if !refused {
		return authzCheck{}
	}
	return answer(func(topic string) int16 {
		switch {
		case !allowed(topic):
			return topicAuthFailed
		case !s.topicExists(topic):
			return kerr.UnknownTopicOrPartition.Code
		}
		return kerr.OperationNotAttempted.Code
	})
}

func (s *Server) topicExists(name string) bool {
	_, err := s.log.Topic(name)
	return err == nil
}

// authzAddOffsetsToTxn: WRITE on the transactional id, READ on the group.
func (s *Server) authzAddOffsetsToTxn(cc *clientConn, req *kmsg.AddOffsetsToTxnRequest) authzCheck {
	if c := s.txnOnly(cc, req, req.TransactionalID); c.deny != nil {
		return c
	}
	return s.groupOnly(cc, req, req.Group, auth.OpRead)
}

// authzTxnOffsetCommit: WRITE on the transactional id, READ on the group
// (either refused: every partition answers that error), READ on each
// topic.
func (s *Server) authzTxnOffsetCommit(cc *clientConn, req *kmsg.TxnOffsetCommitRequest) authzCheck {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	answer := func(topics []kmsg.TxnOffsetCommitRequestTopic, code int16) {
		for _, t := range topics {
			ot := kmsg.NewTxnOffsetCommitResponseTopic()
			ot.Topic = t.Topic
			for _, p := range t.Partitions {
				op := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				op.Partition, op.ErrorCode = p.Partition, code
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		}
	}
	switch {
	case !s.authorize(cc, auth.OpWrite, resTxnID, req.TransactionalID):
		answer(req.Topics, txnAuthFailed)
		return authzCheck{deny: resp}
	case !s.authorize(cc, auth.OpRead, resGroup, req.Group):
		answer(req.Topics, groupAuthFailed)
		return authzCheck{deny: resp}
	}
	allowed := s.topicAllowed(cc, auth.OpRead)
	var denied []kmsg.TxnOffsetCommitRequestTopic
	req.Topics, denied = splitBy(req.Topics, func(t kmsg.TxnOffsetCommitRequestTopic) bool { return allowed(t.Topic) })
	return authzCheck{amend: func(r kmsg.Response) {
		resp = r.(*kmsg.TxnOffsetCommitResponse)
		answer(denied, topicAuthFailed)
	}}
}

// authzDescribeLogDirs: DESCRIBE on the cluster, else no directories and
// (v3+) CLUSTER_AUTHORIZATION_FAILED.
func (s *Server) authzDescribeLogDirs(cc *clientConn, req *kmsg.DescribeLogDirsRequest) authzCheck {
	if s.authorizeCluster(cc, auth.OpDescribe) {
		return authzCheck{}
	}
	return authzCheck{deny: setTopError(req.ResponseKind(), clusterAuthFailed)}
}

// authzDescribeCluster: no check (as Kafka); the cluster's authorized
// operations reflect the ACLs.
func (s *Server) authzDescribeCluster(cc *clientConn, req *kmsg.DescribeClusterRequest) authzCheck {
	if !req.IncludeClusterAuthorizedOperations {
		return authzCheck{}
	}
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.DescribeClusterResponse)
		if resp.ErrorCode != 0 {
			return
		}
		resp.ClusterAuthorizedOperations = 0
		if s.authzQuiet(cc, auth.OpDescribe, resCluster, auth.ClusterName) {
			resp.ClusterAuthorizedOperations = s.authorizedOps(cc, resCluster, auth.ClusterName,
				auth.OpCreate, auth.OpClusterAction, auth.OpDescribeConfigs, auth.OpAlterConfigs, auth.OpIdempotentWrite, auth.OpAlter, auth.OpDescribe)
		}
	}}
}

// authzDescribeProducers: READ on each topic.
func (s *Server) authzDescribeProducers(cc *clientConn, req *kmsg.DescribeProducersRequest) authzCheck {
	return denyTopics(s, cc, auth.OpRead, &req.Topics, func(t kmsg.DescribeProducersRequestTopic) string { return t.Topic },
		func(resp *kmsg.DescribeProducersResponse, t kmsg.DescribeProducersRequestTopic) {
			ot := kmsg.NewDescribeProducersResponseTopic()
			ot.Topic = t.Topic
			for _, p := range t.Partitions {
				op := kmsg.NewDescribeProducersResponseTopicPartition()
				op.Partition, op.ErrorCode = p, topicAuthFailed
				ot.Partitions = append(ot.Partitions, op)
			}
			resp.Topics = append(resp.Topics, ot)
		})
}

// authzListTransactions lists only the transactional ids the principal
// may describe.
func (s *Server) authzListTransactions(cc *clientConn, _ *kmsg.ListTransactionsRequest) authzCheck {
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.ListTransactionsResponse)
		resp.TransactionStates, _ = splitBy(resp.TransactionStates, func(t kmsg.ListTransactionsResponseTransactionState) bool {
			return s.authzQuiet(cc, auth.OpDescribe, resTxnID, t.TransactionalID)
		})
	}}
}

// authzDescribeTransactions: DESCRIBE on each transactional id; the
// transaction's topics the principal may not describe are left out.
func (s *Server) authzDescribeTransactions(cc *clientConn, req *kmsg.DescribeTransactionsRequest) authzCheck {
	var denied []string
	req.TransactionalIDs, denied = splitBy(req.TransactionalIDs, func(id string) bool {
		return s.authorize(cc, auth.OpDescribe, resTxnID, id)
	})
	describe := func(topic string) bool { return s.authzQuiet(cc, auth.OpDescribe, resTopic, topic) }
	return authzCheck{amend: func(r kmsg.Response) {
		resp := r.(*kmsg.DescribeTransactionsResponse)
		for i := range resp.TransactionStates {
			ts := &resp.TransactionStates[i]
			ts.Topics, _ = splitBy(ts.Topics, func(t kmsg.DescribeTransactionsResponseTransactionStateTopic) bool { return describe(t.Topic) })
		}
		for _, id := range denied {
			ts := kmsg.NewDescribeTransactionsResponseTransactionState()
			ts.TransactionalID, ts.ErrorCode = id, txnAuthFailed
			ts.ProducerID, ts.ProducerEpoch, ts.StartTimestamp = -1, -1, -1
			resp.TransactionStates = append(resp.TransactionStates, ts)
		}
	}}
}

// clusterOnly: op on the cluster, else CLUSTER_AUTHORIZATION_FAILED for
// the whole request (the SCRAM and ACL admin APIs).
func (s *Server) clusterOnly(cc *clientConn, req kmsg.Request, op auth.Operation) authzCheck {
	if s.authorizeCluster(cc, op) {
		return authzCheck{}
	}
	resp := req.ResponseKind()
	switch q := req.(type) {
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		r := resp.(*kmsg.AlterUserSCRAMCredentialsResponse)
		seen := map[string]bool{}
		add := func(user string) {
			if !seen[user] {
				seen[user] = true
				ur := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
				ur.User, ur.ErrorCode = user, clusterAuthFailed
				r.Results = append(r.Results, ur)
			}
		}
		for _, d := range q.Deletions {
			add(d.Name)
		}
		for _, u := range q.Upsertions {
			add(u.Name)
		}
	case *kmsg.CreateACLsRequest:
		r := resp.(*kmsg.CreateACLsResponse)
		for range q.Creations {
			cr := kmsg.NewCreateACLsResponseResult()
			cr.ErrorCode = clusterAuthFailed
			r.Results = append(r.Results, cr)
		}
	case *kmsg.DeleteACLsRequest:
		r := resp.(*kmsg.DeleteACLsResponse)
		for range q.Filters {
			dr := kmsg.NewDeleteACLsResponseResult()
			dr.ErrorCode = clusterAuthFailed
			r.Results = append(r.Results, dr)
		}
	case *kmsg.AlterClientQuotasRequest:
		r := resp.(*kmsg.AlterClientQuotasResponse)
		for _, e := range q.Entries {
			re := kmsg.NewAlterClientQuotasResponseEntry()
			re.ErrorCode = clusterAuthFailed
			for _, ent := range e.Entity {
				ee := kmsg.NewAlterClientQuotasResponseEntryEntity()
				ee.Type, ee.Name = ent.Type, ent.Name
				re.Entity = append(re.Entity, ee)
			}
			r.Entries = append(r.Entries, re)
		}
	default:
		setTopError(resp, clusterAuthFailed)
	}
	return authzCheck{deny: resp}
}

// produceTxnAuthz checks WRITE on a produce request's transactional id.
func (s *Server) produceTxnAuthz(cc *clientConn, req *kmsg.ProduceRequest) int16 {
	if req.TransactionID != nil && !s.authorize(cc, auth.OpWrite, resTxnID, *req.TransactionID) {
		return txnAuthFailed
	}
	return 0
}

// AuthorizeResource reports whether principal, connecting from host, may
// perform op on the named resource by the server's ACLs and tenants
// (always true without an authorizer); a denial is counted and logged.
func (s *Server) AuthorizeResource(principal, host string, op auth.Operation, rt auth.ResourceType, name string) bool {
	if s.Allowed(principal, host, op, rt, name) {
		return true
	}
	s.denied(principal, host, op, rt, name)
	return false
}

// Allowed is AuthorizeResource without counting or logging a denial, for
// filtering a listing (the HTTP API's topics and groups): leaving out
// what a principal may not describe is no refusal, as in Kafka.
func (s *Server) Allowed(principal, host string, op auth.Operation, rt auth.ResourceType, name string) bool {
	return s.authz == nil || s.authz.Authorize(principal, host, op, rt, name)
}

// AuthorizeCluster reports whether principal, connecting from host, may
// perform op on the cluster by the server's ACLs (always true without an
// authorizer). The HTTP API asks it for requests made with tokens tied to
// principals: DESCRIBE to read, ALTER to change.
func (s *Server) AuthorizeCluster(principal, host string, op auth.Operation) bool {
	return s.AuthorizeResource(principal, host, op, resCluster, auth.ClusterName)
}
