package kafka

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleAlterConfigs replaces a topic's configuration (the legacy API: the
// configs given are the whole set; every other config returns to its
// default), taking effect without a restart. Broker configs are static
// here: altering one answers INVALID_REQUEST.
func (s *Server) handleAlterConfigs(req *kmsg.AlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, r := range req.Resources {
		or := kmsg.NewAlterConfigsResponseResource()
		or.ResourceType, or.ResourceName = r.ResourceType, r.ResourceName
		code, msg := s.alterTopicConfig(r.ResourceType, r.ResourceName, req.ValidateOnly, func(cfg *logstore.TopicConfig) error {
			fresh := logstore.TopicConfig{Partitions: cfg.Partitions}
			for _, c := range r.Configs {
				if err := fresh.SetConfig(c.Name, c.Value); err != nil {
					return err
				}
			}
			*cfg = fresh
			return nil
		})
		or.ErrorCode = code
		if msg != "" {
			or.ErrorMessage = kmsg.StringPtr(msg)
		}
		resp.Resources = append(resp.Resources, or)
	}
	return resp
}

// handleIncrementalAlterConfigs changes single configs of a topic: SET,
// DELETE (back to the default), and APPEND/SUBTRACT for list configs
// (cleanup.policy; a SUBTRACT that would empty the list is refused).
func (s *Server) handleIncrementalAlterConfigs(req *kmsg.IncrementalAlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, r := range req.Resources {
		or := kmsg.NewIncrementalAlterConfigsResponseResource()
		or.ResourceType, or.ResourceName = r.ResourceType, r.ResourceName
		code, msg := s.alterTopicConfig(r.ResourceType, r.ResourceName, req.ValidateOnly, func(cfg *logstore.TopicConfig) error {
			seen := map[string]bool{}
			for _, c := range r.Configs {
				if seen[c.Name] {
					return fmt.Errorf("config %s: %w: given twice", c.Name, errInvalidRequest)
				}
				seen[c.Name] = true
				if err := applyIncremental(s.log, cfg, c); err != nil {
					return err
				}
			}
			return nil
		})
		or.ErrorCode = code
		if msg != "" {
			or.ErrorMessage = kmsg.StringPtr(msg)
		}
		resp.Resources = append(resp.Resources, or)
	}
	return resp
}

var errInvalidRequest = errors.New("invalid request")

// applyIncremental applies one IncrementalAlterConfigs operation.
func applyIncremental(l *logstore.Log, cfg *logstore.TopicConfig, c kmsg.IncrementalAlterConfigsRequestResourceConfig) error {
	switch c.Op {
	case kmsg.IncrementalAlterConfigOpSet:
		if c.Value == nil {
			return fmt.Errorf("config %s: %w: SET needs a value", c.Name, logstore.ErrInvalidConfig)
		}
		return cfg.SetConfig(c.Name, c.Value)
	case kmsg.IncrementalAlterConfigOpDelete:
		return cfg.SetConfig(c.Name, nil)
	case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
		if !logstore.IsListConfig(c.Name) {
			return fmt.Errorf("config %s: %w: APPEND and SUBTRACT apply to list configs only", c.Name, logstore.ErrInvalidConfig)
		}
		if c.Value == nil {
			return fmt.Errorf("config %s: %w: %s needs a value", c.Name, logstore.ErrInvalidConfig, c.Op)
		}
		var cur []string
		for _, e := range l.ConfigEntries(*cfg) {
			if e.Name == c.Name && e.Value != "" {
				cur = strings.Split(e.Value, ",")
			}
		}
		for _, v := range strings.Split(*c.Value, ",") {
			v = strings.TrimSpace(v)
			i := slices.Index(cur, v)
			switch {
			case c.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0:
				cur = append(cur, v)
			case c.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0:
				cur = slices.Delete(cur, i, i+1)
			}
		}
		if len(cur) == 0 {
			// Kafka would keep an empty policy (neither delete nor
			// compact: keep everything); falling back to the default
			// instead could turn deletion on. Refused.
			return fmt.Errorf("config %s: %w: %s would leave it empty; it needs at least one value", c.Name, logstore.ErrInvalidConfig, c.Op)
		}
		v := strings.Join(cur, ",")
		return cfg.SetConfig(c.Name, &v)
	}
	return fmt.Errorf("config %s: %w: unknown operation %d", c.Name, errInvalidRequest, c.Op)
}

// alterTopicConfig runs one resource of an alter request and returns its
// error code and message.
func (s *Server) alterTopicConfig(typ kmsg.ConfigResourceType, name string, validateOnly bool, edit func(*logstore.TopicConfig) error) (int16, string) {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		return kerr.InvalidRequest.Code, "broker configs are static: set them on the sluice serve command line"
	default:
		return kerr.InvalidRequest.Code, "only topic configs can be altered"
	}
	if isCoordinatorTopic(name) {
		return kerr.InvalidTopicException.Code, "internal topics are configured by the server"
	}
	if _, err := s.log.AlterTopicConfig(name, validateOnly, edit); err != nil {
		return configErrorCode(err), err.Error()
	}
	if !validateOnly {
		s.logger.Info("altered topic config", "topic", name)
	}
	return 0, ""
}

// configErrorCode maps config errors to Kafka's codes.
func configErrorCode(err error) int16 {
	switch {
	case errors.Is(err, logstore.ErrUnknownConfig), errors.Is(err, logstore.ErrInvalidConfig), errors.Is(err, logstore.ErrInvalidTopic):
		return kerr.InvalidConfig.Code
	case errors.Is(err, errInvalidRequest):
		return kerr.InvalidRequest.Code
	}
	return errorCode(err)
}

// handleCreatePartitions grows topics' partition counts. Replica
// assignments, if given, must place each new partition on this node alone
// (one broker); a count that does not grow answers INVALID_PARTITIONS.
func (s *Server) handleCreatePartitions(req *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, t := range req.Topics {
		seen[t.Topic]++
	}
	for _, t := range req.Topics {
		ot := kmsg.NewCreatePartitionsResponseTopic()
		ot.Topic = t.Topic
		fail := func(code int16, msg string) {
			ot.ErrorCode, ot.ErrorMessage = code, kmsg.StringPtr(msg)
		}
		switch {
		case seen[t.Topic] > 1:
			fail(kerr.InvalidRequest.Code, "topic named more than once")
		case len(t.Assignment) > 0 && s.badAssignments(t, fail):
		case isCoordinatorTopic(t.Topic):
			fail(kerr.InvalidTopicException.Code, "internal topics are configured by the server")
		case t.Count > s.cfg.MaxPartitions:
			fail(kerr.InvalidPartitions.Code, fmt.Sprintf("at most %d partitions", s.cfg.MaxPartitions))
		default:
			if err := s.log.AddPartitions(t.Topic, t.Count, req.ValidateOnly); err != nil {
				code := errorCode(err)
				if errors.Is(err, logstore.ErrInvalidPartitions) {
					code = kerr.InvalidPartitions.Code
				}
				fail(code, err.Error())
			} else if !req.ValidateOnly {
				s.logger.Info("created partitions", "topic", t.Topic, "partitions", t.Count)
			}
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

// badAssignments checks CreatePartitions' replica assignments (one per new
// partition, each this node alone) and answers a failure through fail.
func (s *Server) badAssignments(t kmsg.CreatePartitionsRequestTopic, fail func(int16, string)) bool {
	topic, err := s.log.Topic(t.Topic)
	if err != nil {
		fail(errorCode(err), err.Error())
		return true
	}
	if adding := t.Count - topic.NumPartitions(); adding > 0 && int(adding) != len(t.Assignment) {
		fail(kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("%d replica assignments for %d new partitions", len(t.Assignment), adding))
		return true
	}
	for _, a := range t.Assignment {
		if code, msg := s.singleNodeReplicas(a.Replicas); code != 0 {
			fail(code, msg)
			return true
		}
	}
	return false
}

// handleDeleteRecords moves partitions' log start offsets (offset -1: the
// high watermark) and answers the new low watermarks. A topic whose cleanup
// policy does not include delete (compact alone) answers POLICY_VIOLATION,
// as Kafka: its records are the latest of their keys.
func (s *Server) handleDeleteRecords(req *kmsg.DeleteRecordsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, t := range req.Topics {
		ot := kmsg.NewDeleteRecordsResponseTopic()
		ot.Topic = t.Topic
		topic, terr := s.log.Topic(t.Topic)
		for _, rp := range t.Partitions {
			op := kmsg.NewDeleteRecordsResponseTopicPartition()
			op.Partition, op.LowWatermark = rp.Partition, -1
			switch {
			case terr != nil:
				op.ErrorCode = errorCode(terr)
			case isCoordinatorTopic(t.Topic), !topic.Cleanup().Delete():
				op.ErrorCode = kerr.PolicyViolation.Code
			default:
				p, err := topic.Partition(rp.Partition)
				if err == nil {
					op.LowWatermark, err = p.DeleteRecords(rp.Offset)
				}
				op.ErrorCode = errorCode(err)
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}
