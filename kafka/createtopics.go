package kafka

import (
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleCreateTopics creates topics (a topic named twice answers
// INVALID_REQUEST, as Kafka). Partitions -1 means the server default;
// the replication factor must be -1 or 1 (one broker); explicit replica
// assignments must place every partition on this node alone. Configs are those of logstore's topic config
// table (cleanup.policy, retention, segment, compaction and fsync
// settings); a bad value answers INVALID_CONFIG, other Kafka configs are
// ignored.
func (s *Server) handleCreateTopics(req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	named := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		named[rt.Topic]++
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewCreateTopicsResponseTopic()
		ot.Topic = rt.Topic
		ot.NumPartitions, ot.ReplicationFactor = -1, -1
		if named[rt.Topic] > 1 {
			ot.ErrorCode, ot.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr("topic named more than once in the request")
			resp.Topics = append(resp.Topics, ot)
			continue
		}
		cfg, code, msg := s.topicConfigFrom(rt)
		if code == 0 {
			code, msg = s.tenants.topicPolicy(rt.Topic, &cfg)
		}
		if code == 0 {
			// Before creating, so that validate_only answers as the
			// creation would, and a bad combination of configs answers
			// INVALID_CONFIG rather than INVALID_TOPIC_EXCEPTION.
			if err := s.log.CheckTopicConfig(cfg); err != nil {
				code, msg = kerr.InvalidConfig.Code, err.Error()
			}
		}
		if code == 0 && !req.ValidateOnly {
			if err := s.log.CreateTopic(rt.Topic, cfg); err != nil {
				code, msg = errorCode(err), err.Error()
			} else {
				s.logger.Info("created topic", "topic", rt.Topic, "partitions", cfg.Partitions)
			}
		} else if code == 0 {
			if _, err := s.log.Topic(rt.Topic); err == nil {
				code, msg = kerr.TopicAlreadyExists.Code, "topic already exists"
			} else if err := logstore.ValidTopicName(rt.Topic); err != nil {
				code, msg = kerr.InvalidTopicException.Code, err.Error()
			}
		}
		ot.ErrorCode = code
		if msg != "" {
			ot.ErrorMessage = kmsg.StringPtr(msg)
		}
		if code == 0 {
			ot.TopicID = s.topicID(rt.Topic)
			ot.NumPartitions, ot.ReplicationFactor = cfg.Partitions, 1
			for _, c := range s.topicConfigEntries(cfg) {
				rc := kmsg.NewCreateTopicsResponseTopicConfig()
				rc.Name, rc.Value, rc.Source = c.name, kmsg.StringPtr(c.value), int8(c.source)
				ot.Configs = append(ot.Configs, rc)
			}
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

func (s *Server) topicConfigFrom(rt kmsg.CreateTopicsRequestTopic) (logstore.TopicConfig, int16, string) {
	cfg := logstore.TopicConfig{Partitions: rt.NumPartitions}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return cfg, kerr.InvalidRequest.Code, "replica assignments and a partition count or replication factor given: give one or the other"
		}
		n := int32(len(rt.ReplicaAssignment))
		seen := make(map[int32]bool, n)
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || a.Partition >= n || seen[a.Partition] {
				return cfg, kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("the assignments' partitions must be numbered 0 to %d, each once", n-1)
			}
			seen[a.Partition] = true
			if code, msg := s.singleNodeReplicas(a.Replicas); code != 0 {
				return cfg, code, msg
			}
		}
		cfg.Partitions = n
	}
	if cfg.Partitions == -1 {
		cfg.Partitions = s.cfg.DefaultPartitions
	}
	if cfg.Partitions <= 0 || cfg.Partitions > s.cfg.MaxPartitions {
		return cfg, kerr.InvalidPartitions.Code, fmt.Sprintf("partitions must be in [1, %d], got %d", s.cfg.MaxPartitions, cfg.Partitions)
	}
	if rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1 {
		return cfg, kerr.InvalidReplicationFactor.Code, "a single broker: the replication factor must be 1"
	}
	for _, c := range rt.Configs {
		if err := cfg.SetConfig(c.Name, c.Value); err != nil {
			if errors.Is(err, logstore.ErrUnknownConfig) {
				// Kafka configs this log has no use for (compression.type,
				// flush.ms, ...) are accepted and ignored, as tools
				// set them routinely.
				s.logger.Debug("ignoring unsupported topic config", "topic", rt.Topic, "config", c.Name)
				continue
			}
			return cfg, kerr.InvalidConfig.Code, err.Error()
		}
	}
	return cfg, 0, ""
}

// singleNodeReplicas checks one partition's replica assignment: on a single
// broker it can only be this node, once.
func (s *Server) singleNodeReplicas(replicas []int32) (int16, string) {
	if len(replicas) != 1 || replicas[0] != s.cfg.NodeID {
		return kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("a single broker: every partition's replicas must be [%d], got %v", s.cfg.NodeID, replicas)
	}
	return 0, ""
}

// configEntry is one topic config as described to clients.
type configEntry struct {
	name, value string
	source      kmsg.ConfigSource
	kind        kmsg.ConfigType
	doc         string
	readOnly    bool
}

// topicConfigEntries lists a topic's effective configs.
func (s *Server) topicConfigEntries(cfg logstore.TopicConfig) []configEntry {
	var out []configEntry
	for _, e := range s.log.ConfigEntries(cfg) {
		src := kmsg.ConfigSourceDynamicTopicConfig
		if e.IsDefault {
			src = kmsg.ConfigSourceDefaultConfig
		}
		out = append(out, configEntry{e.Name, e.Value, src, kmsg.ConfigType(e.Type), e.Doc, e.ReadOnly})
	}
	return out
}
