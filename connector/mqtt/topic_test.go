package mqtt

import (
	"encoding/json"
	"testing"
)

func TestValidateFilter(t *testing.T) {
	for _, ok := range []string{"a", "a/b", "+", "#", "a/+/c", "a/#", "+/+", "/a", "a//b"} {
		if err := ValidateFilter(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a#", "a/#/b", "a+/b", "a/b+", "#/a"} {
		if ValidateFilter(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, bad := range []string{"", "a/+", "a/#", "a\x00"} {
		if ValidateTopic(bad) == nil {
			t.Errorf("topic %q accepted", bad)
		}
	}
}

func TestAddTopicField(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"a":1}`, `{"topic":"s/1","a":1}`},
		{` {}`, `{"topic":"s/1"}`},
		{`{ }`, `{"topic":"s/1" }`},
		{`[1]`, `[1]`},
		{`21.5`, `21.5`},
		{``, ``},
	} {
		if got := string(AddTopicField([]byte(c.in), "topic", "s/1")); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
	if got := string(AddTopicField([]byte(`{}`), "t", "a\"b\\c\n")); got != `{"t":"a\"b\\c\u000a"}` {
		t.Errorf("escaping: %s", got)
	}
}

// FuzzAddTopicField: for any payload that is a JSON object, the result is
// a JSON object holding the topic (unless the payload has its own field of
// that name, which wins); anything else is returned unchanged.
func FuzzAddTopicField(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{}`, ` {"topic":"x"}`, `[]`, `"s"`, `{`, `{"a":{"b":[1,2]}}`} {
		f.Add([]byte(s), "sensors/1/temp")
	}
	f.Fuzz(func(t *testing.T, payload []byte, topic string) {
		out := AddTopicField(payload, "topic", topic)
		var in map[string]any
		if json.Unmarshal(payload, &in) != nil {
			return // not an object: nothing promised beyond not panicking
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q -> %q: %v", payload, out, err)
		}
		if _, own := in["topic"]; !own {
			if s, ok := got["topic"].(string); !ok || (s != topic && json.Valid([]byte(`"`+topic+`"`))) {
				t.Fatalf("%q -> %q: topic %v, want %q", payload, out, got["topic"], topic)
			}
		}
	})
}
