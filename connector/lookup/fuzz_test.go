package lookup

import (
	"encoding/json"
	"testing"

	"github.com/valyala/fastjson"
)

// FuzzRedisString: a Redis string value (outside bytes) always becomes
// one row of the declared fields: a JSON object's members by name, any
// other value whole in the first field.
func FuzzRedisString(f *testing.F) {
	for _, s := range []string{`{"name":"a","tier":3}`, `plain`, `[1,2]`, `{"name":{"x":[1,{"y":null}]}}`, `{"tier":1e400}`, `"quoted"`, ``, `{`} {
		f.Add(s)
	}
	r := &Redis{cfg: RedisConfig{Fields: []string{"name", "tier"}}}
	f.Fuzz(func(t *testing.T, s string) {
		var p fastjson.Parser
		rw := r.stringRow(&p, s)
		if len(rw) != 2 {
			t.Fatalf("%d values", len(rw))
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &obj) != nil || obj == nil {
			if rw[0].AsString() != s || !rw[1].IsNull() {
				t.Fatalf("non-object %q read as %v", s, rw)
			}
			return
		}
		if _, ok := obj["name"]; !ok && !rw[0].IsNull() {
			t.Fatalf("%q: name absent but read as %v", s, rw[0])
		}
	})
}
