package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAuthzRulesCoverEveryAPI: every API the server serves has exactly one
// authorisation rule or a stated reason why it needs none here, and each
// rule takes the request type of its key (a mismatch would panic on the
// first request).
func TestAuthzRulesCoverEveryAPI(t *testing.T) {
	for _, r := range supportedAPIs {
		_, ruled := authzRules[r.Key]
		_, elsewhere := authzElsewhere[r.Key]
		name := kmsg.NameForKey(r.Key)
		switch {
		case !ruled && !elsewhere:
			t.Errorf("API %d (%s) is served without an authorisation rule", r.Key, name)
		case ruled && elsewhere:
			t.Errorf("API %d (%s) has a rule and is also checked elsewhere", r.Key, name)
		}
	}
	for key := range authzRules {
		if _, ok := versionRange(key); !ok {
			t.Errorf("rule for API %d (%s), which is not served", key, kmsg.NameForKey(key))
		}
	}
}
