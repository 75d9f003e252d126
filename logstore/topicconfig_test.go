package logstore

import "testing"

// TestConfigValuesDescribedAsSet: a config set to a value is described
// with that value (0 for min.cleanable.dirty.ratio was described as
// 5e-324, the marker set stores for it).
func TestConfigValuesDescribedAsSet(t *testing.T) {
	l := mustOpen(t, Options{Dir: t.TempDir(), RetentionCheckInterval: -1})
	defer l.Close()
	for name, v := range map[string]string{
		"min.cleanable.dirty.ratio": "0",
		"retention.ms":              "3600000",
		"max.message.bytes":         "2048",
		"delete.retention.ms":       "0",
		"cleanup.policy":            "compact,delete",
	} {
		var c TopicConfig
		if err := c.SetConfig(name, &v); err != nil {
			t.Fatalf("%s=%s: %v", name, v, err)
		}
		for _, e := range l.ConfigEntries(c) {
			if e.Name == name && (e.Value != v || e.IsDefault) {
				t.Errorf("%s set to %s is described as %q (default %v)", name, v, e.Value, e.IsDefault)
			}
		}
	}
}
