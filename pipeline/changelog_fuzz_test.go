package pipeline

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzChangelogExpand: any bytes either fail as "not a change event" or
// expand into JSON objects whose op is a change (+I, -U, +U, -D), as many
// as the event's op calls for.
func FuzzChangelogExpand(f *testing.F) {
	for _, s := range []string{
		`{"op":"c","before":null,"after":{"id":1,"name":"a"}}`,
		`{"op":"u","before":{"id":1},"after":{"id":1,"name":"b","op":"hidden"}}`,
		`{"op":"u","after":{"id":1}}`,
		`{"op":"d","before":{"id":1},"after":null}`,
		`{"op":"r","after":{"id":2,"doc":{"x":[1,2]},"k\"ey":"\u2028"}}`,
		`{"op":"t"}`, `[1]`, ``, `{"op":"d"}`, `{"op":"c","after":5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		x := &changelogExpander{spec: &ChangelogSpec{Op: "op", Before: "before", After: "after"}}
		out, err := x.expand(data)
		if err != nil {
			if !strings.Contains(err.Error(), errChangelog.Error()) {
				t.Fatalf("error %v does not say the record is not a change event", err)
			}
			return
		}
		if len(out) > 2 {
			t.Fatalf("%d rows from one event", len(out))
		}
		for _, r := range out {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(r, &m); err != nil {
				t.Fatalf("%q -> %q: %v", data, r, err)
			}
			var op string
			_ = json.Unmarshal(m["op"], &op)
			if op != "+I" && op != "-U" && op != "+U" && op != "-D" {
				t.Fatalf("%q -> op %q", data, m["op"])
			}
		}
	})
}
