package kafka

import (
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeLogDirs describes the one log directory, the log's data
// directory: the size of every requested partition (bytes of its segments;
// nil topics means every partition, internal topics included), with no
// offset lag and no future replica since there are no replicas to move.
// Requested topics or partitions that do not exist are absent, as Kafka
// answers. From v4, the volume's total and usable bytes (-1 when unknown).
func (s *Server) handleDescribeLogDirs(req *kmsg.DescribeLogDirsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = s.log.Dir()
	if abs, err := filepath.Abs(dir.Dir); err == nil {
		dir.Dir = abs
	}
	dir.TotalBytes, dir.UsableBytes = volumeBytes(dir.Dir)
	if req.Topics == nil {
		for _, name := range s.log.Topics() {
			if t, ok := s.logDirTopic(name, nil, true); ok {
				dir.Topics = append(dir.Topics, t)
			}
		}
	} else {
		seen := make(map[string]int, len(req.Topics))
		for _, rt := range req.Topics {
			if i, dup := seen[rt.Topic]; dup {
				// The same topic twice: answer its partitions once.
				t, _ := s.logDirTopic(rt.Topic, rt.Partitions, false)
				dir.Topics[i].Partitions = mergeLogDirParts(dir.Topics[i].Partitions, t.Partitions)
				continue
			}
			if t, ok := s.logDirTopic(rt.Topic, rt.Partitions, false); ok {
				seen[rt.Topic] = len(dir.Topics)
				dir.Topics = append(dir.Topics, t)
			}
		}
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return resp
}

// logDirTopic describes the listed partitions of a topic (every partition
// when all); ok is false when the topic or every listed partition is absent.
func (s *Server) logDirTopic(name string, parts []int32, all bool) (kmsg.DescribeLogDirsResponseDirTopic, bool) {
	out := kmsg.NewDescribeLogDirsResponseDirTopic()
	out.Topic = name
	t, err := s.log.Topic(name)
	if err != nil {
		return out, false
	}
	if all {
		parts = make([]int32, t.NumPartitions())
		for i := range parts {
			parts[i] = int32(i)
		}
	}
	done := make(map[int32]bool, len(parts))
	for _, id := range parts {
		if done[id] {
			continue
		}
		p, err := t.Partition(id)
		if err != nil {
			continue
		}
		done[id] = true
		op := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		op.Partition = id
		op.Size = p.Stats().Bytes
		out.Partitions = append(out.Partitions, op)
	}
	return out, len(out.Partitions) > 0
}

// mergeLogDirParts adds the partitions of b missing from a.
func mergeLogDirParts(a, b []kmsg.DescribeLogDirsResponseDirTopicPartition) []kmsg.DescribeLogDirsResponseDirTopicPartition {
	for _, p := range b {
		found := false
		for _, q := range a {
			if q.Partition == p.Partition {
				found = true
				break
			}
		}
		if !found {
			a = append(a, p)
		}
	}
	return a
}
