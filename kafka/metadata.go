package kafka

import (
	"errors"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// isCoordinatorTopic reports whether a topic holds the log's, the
// coordinators' or sluice run's sinks' own state; clients may read it but
// never write, delete or reconfigure it.
func isCoordinatorTopic(name string) bool {
	switch name {
	case logstore.OffsetsTopic, logstore.ProducerIDsTopic, txnStateTopic, logstore.SinkTxnsTopic, auth.UsersTopic, auth.ACLsTopic, auth.QuotasTopic, auth.TenantsTopic, auth.TokensTopic:
		return true
	}
	return false
}

// isSecurityTopic reports whether a topic holds the security state: SCRAM
// credentials, ACLs, quotas, tenants, HTTP token hashes. Kafka keeps these
// out of clients' reach (DescribeUserScramCredentials shows no keys,
// DescribeAcls needs DESCRIBE on the cluster); here Fetch serves them to
// super users only, whatever the ACLs say (readsSecurityTopics): the
// StoredKeys in __sluice_users would allow an offline dictionary attack on
// every password.
func isSecurityTopic(name string) bool {
	switch name {
	case auth.UsersTopic, auth.ACLsTopic, auth.QuotasTopic, auth.TenantsTopic, auth.TokensTopic:
		return true
	}
	return false
}

// readsSecurityTopics reports whether cc may fetch the security topics:
// super users of the authorizer, and in-process callers (nil cc). Without
// an authorizer there is no super user, so no client may.
func (s *Server) readsSecurityTopics(cc *clientConn) bool {
	if cc == nil {
		return true
	}
	if s.authz == nil {
		return false
	}
	principal, _ := principalOf(cc)
	return s.authz.SuperUser(principal)
}

// handleMetadata answers Metadata: this one broker leads every partition.
// Unknown topics are created when auto-creation is on and the client allows
// it (always before v4).
func (s *Server) handleMetadata(cc *clientConn, req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	host, port := s.advertised(cc)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = s.cfg.NodeID, host, port
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	resp.ClusterID = &s.cfg.ClusterID
	resp.ControllerID = s.cfg.NodeID

	var names []string
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		names = s.log.Topics()
	} else {
		for _, t := range req.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			} else {
				names = append(names, s.topicByID(t.TopicID)) // "" when unknown
			}
		}
	}
	autoCreate := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, name := range names {
		resp.Topics = append(resp.Topics, s.topicMetadata(name, autoCreate && !all))
	}
	return resp
}

func (s *Server) topicMetadata(name string, autoCreate bool) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(name)
	mt.IsInternal = isCoordinatorTopic(name) // as Kafka: listed, flagged internal
	t, err := s.log.Topic(name)
	if errors.Is(err, logstore.ErrUnknownTopic) && autoCreate && name != "" {
		cfg := logstore.TopicConfig{Partitions: s.cfg.DefaultPartitions}
		if code, msg := s.tenants.topicPolicy(name, &cfg); code != 0 {
			mt.ErrorCode = code
			s.logger.Info("refused to auto-create topic", "topic", name, "reason", msg)
			return mt
		}
		err = s.log.CreateTopic(name, cfg)
		if err == nil || errors.Is(err, logstore.ErrTopicExists) {
			s.logger.Info("auto-created topic", "topic", name, "partitions", s.cfg.DefaultPartitions)
			t, err = s.log.Topic(name)
		}
	}
	if err != nil {
		mt.ErrorCode = errorCode(err)
		if errors.Is(err, logstore.ErrUnknownTopic) {
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		return mt
	}
	mt.TopicID = t.ID()
	n := t.NumPartitions()
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, n)
	for p := range n {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p
		mp.Leader = s.cfg.NodeID
		mp.LeaderEpoch = -1
		if part, err := t.Partition(p); err == nil {
			mp.LeaderEpoch = part.LeaderEpoch()
		}
		mp.Replicas = []int32{s.cfg.NodeID}
		mp.ISR = []int32{s.cfg.NodeID}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// topicByID returns the topic whose id is id, or "".
func (s *Server) topicByID(id [16]byte) string {
	if id == ([16]byte{}) {
		return ""
	}
	for n, tid := range s.topicIDs() {
		if tid == id {
			return n
		}
	}
	return ""
}
