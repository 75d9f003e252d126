package kafka

import (
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeConfigs describes topic configs (the effective values of
// the log's topic config) and a few broker configs clients look at.
func (s *Server) handleDescribeConfigs(req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, r := range req.Resources {
		or := kmsg.NewDescribeConfigsResponseResource()
		or.ResourceType, or.ResourceName = r.ResourceType, r.ResourceName
		var entries []configEntry
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, err := s.log.Topic(r.ResourceName)
			if err != nil {
				or.ErrorCode = errorCode(err)
				or.ErrorMessage = kmsg.StringPtr(err.Error())
				break
			}
			entries = s.topicConfigEntries(t.Config())
		case kmsg.ConfigResourceTypeBroker:
			if r.ResourceName != "" && r.ResourceName != strconv.Itoa(int(s.cfg.NodeID)) {
				or.ErrorCode = kerr.InvalidRequest.Code
				or.ErrorMessage = kmsg.StringPtr("unknown broker " + r.ResourceName)
				break
			}
			entries = s.brokerConfigEntries()
		default:
			or.ErrorCode = kerr.InvalidRequest.Code
			or.ErrorMessage = kmsg.StringPtr("only topic and broker configs exist")
		}
		for _, e := range entries {
			if r.ConfigNames != nil && !slices.Contains(r.ConfigNames, e.name) {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value = e.name, kmsg.StringPtr(e.value)
			c.ReadOnly = r.ResourceType == kmsg.ConfigResourceTypeBroker || e.readOnly
			c.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
			c.Source = e.source
			c.ConfigType = e.kind
			if req.IncludeDocumentation {
				c.Documentation = kmsg.StringPtr(e.doc)
			}
			if req.IncludeSynonyms {
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				syn.Name, syn.Value, syn.Source = e.name, kmsg.StringPtr(e.value), e.source
				c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
			}
			or.Configs = append(or.Configs, c)
		}
		resp.Resources = append(resp.Resources, or)
	}
	return resp
}

func (s *Server) brokerConfigEntries() []configEntry {
	static := kmsg.ConfigSourceStaticBrokerConfig
	return []configEntry{
		{"auto.create.topics.enable", strconv.FormatBool(s.cfg.AutoCreateTopics), static, kmsg.ConfigTypeBoolean, "Create topics on first Metadata request.", true},
		{"num.partitions", strconv.Itoa(int(s.cfg.DefaultPartitions)), static, kmsg.ConfigTypeInt, "Partitions of auto-created topics.", true},
		{"socket.request.max.bytes", strconv.Itoa(int(s.cfg.MaxRequestBytes)), static, kmsg.ConfigTypeInt, "Largest request frame accepted.", true},
		{"transaction.max.timeout.ms", strconv.FormatInt(s.cfg.MaxTransactionTimeout.Milliseconds(), 10), static, kmsg.ConfigTypeInt, "Largest transaction timeout a producer may ask for.", true},
		{"default.replication.factor", "1", static, kmsg.ConfigTypeInt, "A single broker.", true},
		{"min.insync.replicas", "1", static, kmsg.ConfigTypeInt, "A single broker.", true},
	}
}
