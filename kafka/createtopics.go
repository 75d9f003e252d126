package kafka

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleCreateTopics creates topics. Partitions -1 means the server default;
// the replication factor must be -1 or 1 (one broker); explicit replica
// assignments are refused. Supported configs: retention.ms, retention.bytes,
// segment.bytes, message.timestamp.type, cleanup.policy=delete; other
// configs are ignored, cleanup.policy=compact is refused.
func (s *Server) handleCreateTopics(req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewCreateTopicsResponseTopic()
		ot.Topic = rt.Topic
		ot.NumPartitions, ot.ReplicationFactor = -1, -1
		cfg, code, msg := s.topicConfigFrom(rt)
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
			ot.TopicID = topicID(rt.Topic)
			ot.NumPartitions, ot.ReplicationFactor = cfg.Partitions, 1
			for _, c := range topicConfigEntries(cfg) {
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
	if cfg.Partitions == -1 {
		cfg.Partitions = s.cfg.DefaultPartitions
	}
	if cfg.Partitions <= 0 || cfg.Partitions > s.cfg.MaxPartitions {
		return cfg, kerr.InvalidPartitions.Code, fmt.Sprintf("partitions must be in [1, %d], got %d", s.cfg.MaxPartitions, rt.NumPartitions)
	}
	if rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1 {
		return cfg, kerr.InvalidReplicationFactor.Code, "a single broker: the replication factor must be 1"
	}
	if len(rt.ReplicaAssignment) > 0 {
		return cfg, kerr.InvalidReplicaAssignment.Code, "replica assignments are not supported"
	}
	for _, c := range rt.Configs {
		if c.Value == nil {
			continue
		}
		v := *c.Value
		bad := func(err error) (logstore.TopicConfig, int16, string) {
			return cfg, kerr.InvalidConfig.Code, fmt.Sprintf("config %s=%q: %v", c.Name, v, err)
		}
		switch c.Name {
		case "retention.ms":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return bad(err)
			}
			if n > 0 {
				cfg.Retention = time.Duration(n) * time.Millisecond
			}
		case "retention.bytes":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return bad(err)
			}
			if n > 0 {
				cfg.RetentionBytes = n
			}
		case "segment.bytes":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return bad(errors.New("must be a positive integer"))
			}
			cfg.SegmentBytes = n
		case "message.timestamp.type":
			switch v {
			case "CreateTime":
			case "LogAppendTime":
				cfg.LogAppendTime = true
			default:
				return bad(errors.New("must be CreateTime or LogAppendTime"))
			}
		case "cleanup.policy":
			if v != "delete" {
				return bad(errors.New("only cleanup.policy=delete is supported"))
			}
		case "sluice.fsync":
			p, err := logstore.ParseFsyncPolicy(v)
			if err != nil {
				return bad(err)
			}
			cfg.Fsync = p
		}
	}
	return cfg, 0, ""
}

// configEntry is one topic config as described to clients.
type configEntry struct {
	name, value string
	source      kmsg.ConfigSource
	kind        kmsg.ConfigType
	doc         string
}

// topicConfigEntries lists a topic's effective configs.
func topicConfigEntries(cfg logstore.TopicConfig) []configEntry {
	src := func(set bool) kmsg.ConfigSource {
		if set {
			return kmsg.ConfigSourceDynamicTopicConfig
		}
		return kmsg.ConfigSourceDefaultConfig
	}
	retMs := int64(-1)
	if cfg.Retention > 0 {
		retMs = cfg.Retention.Milliseconds()
	}
	retBytes := int64(-1)
	if cfg.RetentionBytes > 0 {
		retBytes = cfg.RetentionBytes
	}
	tsType := "CreateTime"
	if cfg.LogAppendTime {
		tsType = "LogAppendTime"
	}
	fsync := cfg.Fsync.String()
	return []configEntry{
		{"cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig, kmsg.ConfigTypeList, "Only delete is supported."},
		{"retention.ms", strconv.FormatInt(retMs, 10), src(cfg.Retention > 0), kmsg.ConfigTypeLong, "Age after which whole segments are deleted; -1 keeps forever."},
		{"retention.bytes", strconv.FormatInt(retBytes, 10), src(cfg.RetentionBytes > 0), kmsg.ConfigTypeLong, "Size per partition above which the oldest segments are deleted; -1 is unlimited."},
		{"segment.bytes", strconv.FormatInt(cfg.SegmentBytes, 10), src(cfg.SegmentBytes > 0), kmsg.ConfigTypeInt, "Segment file size (0: the log's default)."},
		{"message.timestamp.type", tsType, src(cfg.LogAppendTime), kmsg.ConfigTypeString, "CreateTime or LogAppendTime."},
		{"min.insync.replicas", "1", kmsg.ConfigSourceDefaultConfig, kmsg.ConfigTypeInt, "A single broker."},
		{"sluice.fsync", fsync, src(cfg.Fsync != (logstore.FsyncPolicy{})), kmsg.ConfigTypeString, "Durability policy acknowledged writes wait for: always, interval[:d], never."},
	}
}
