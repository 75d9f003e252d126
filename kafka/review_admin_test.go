package kafka_test

import (
	"errors"
	"testing"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestCreateTopicsValidateOnlyMatchesCreate: CreateTopics with
// validate_only answers what the same request without it would answer,
// also for configs that are each valid but invalid together.
func TestCreateTopicsValidateOnlyMatchesCreate(t *testing.T) {
	s := kafkatest.Start(t, kafkatest.Options{})
	adm := kadm.NewClient(s.Client(t))
	for i, cfgs := range []map[string]*string{
		{"min.compaction.lag.ms": strp("5000"), "max.compaction.lag.ms": strp("1000")},
		{"retention.ms": strp("1000"), "local.retention.ms": strp("5000")},
		{"remote.storage.enable": strp("true")}, // this server has no remote storage
	} {
		topic := "validate-only-" + string(rune('a'+i))
		v, err := adm.ValidateCreateTopics(testCtx(t), 1, 1, cfgs, topic)
		if err != nil {
			t.Fatal(err)
		}
		c, err := adm.CreateTopics(testCtx(t), 1, 1, cfgs, topic)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(c[topic].Err, kerr.InvalidConfig) {
			t.Fatalf("%v: create answered %v, want INVALID_CONFIG", cfgs, c[topic].Err)
		}
		if !errors.Is(v[topic].Err, kerr.InvalidConfig) {
			t.Errorf("%v: validate_only answered %v, create %v", cfgs, v[topic].Err, c[topic].Err)
		}
	}
}
