package schema

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// nestedDefaults is an Avro schema of n+1 records where record i has k
// fields of record i-1's type, each with the default {}: checking the
// defaults the way hamba/avro does takes about k^n steps. With inline
// the first field's type is defined in place (nesting the JSON n deep),
// else the records are the branches of a top-level union, named in
// order (the JSON stays shallow).
func nestedDefaults(n, k int, inline bool) string {
	t0 := `{"type":"record","name":"T0","fields":[{"name":"x","type":"int","default":0}]}`
	if !inline {
		defs := []string{t0}
		for i := 1; i <= n; i++ {
			var fs []string
			for j := 0; j < k; j++ {
				fs = append(fs, fmt.Sprintf(`{"name":"f%d","type":"T%d","default":{}}`, j, i-1))
			}
			defs = append(defs, fmt.Sprintf(`{"type":"record","name":"T%d","fields":[%s]}`, i, strings.Join(fs, ",")))
		}
		return "[" + strings.Join(defs, ",") + "]"
	}
	s := t0
	for i := 1; i <= n; i++ {
		fs := []string{fmt.Sprintf(`{"name":"f0","type":%s,"default":{}}`, s)}
		for j := 1; j < k; j++ {
			fs = append(fs, fmt.Sprintf(`{"name":"f%d","type":"T%d","default":{}}`, j, i-1))
		}
		s = fmt.Sprintf(`{"type":"record","name":"T%d","fields":[%s]}`, i, strings.Join(fs, ","))
	}
	return s
}

// defaultWork counts the steps of checking text's field defaults, past
// the limit if need be.
func defaultWork(t *testing.T, text string) int {
	t.Helper()
	if err := checkAvroLimits(text, nil); err != nil && !strings.Contains(err.Error(), "field defaults") {
		t.Fatal(err)
	}
	w := avroWalk{named: map[string]namedRecord{}}
	var v any
	if err := jsonUnmarshalNumber(text, &v); err != nil {
		t.Fatal(err)
	}
	w.collect(v, "")
	w.budget = 1 << 40
	for _, f := range w.defaults {
		w.value(f.typ, f.ns, f.def, 0)
	}
	return 1<<40 - w.budget
}

// TestDefaultWorkGrowsAsHambaDoes: the count of the work of checking
// defaults doubles with each record of two fields of the previous one's
// type, as hamba/avro's own check does (2.3 s at n = 22 on the 2-core
// development machine), whether the records are nested or named in a
// flat union.
func TestDefaultWorkGrowsAsHambaDoes(t *testing.T) {
	for _, inline := range []bool{true, false} {
		prev := 0
		for n := 1; n <= 12; n++ {
			w := defaultWork(t, nestedDefaults(n, 2, inline))
			if prev > 0 && w < 2*prev {
				t.Errorf("inline %v: n=%d: %d steps, n=%d: %d: not doubling", inline, n-1, prev, n, w)
			}
			prev = w
		}
		if w := defaultWork(t, nestedDefaults(3, 10, inline)); w < 1000 {
			t.Errorf("inline %v: three records of ten fields: %d steps, want over 10^3", inline, w)
		}
	}
}

// TestSchemaLimits: schemas over the documented limits are refused with
// 422 and error code 42201 before hamba/avro parses them (the crafted
// defaults would take it seconds to minutes under the registry's write
// lock); the same shapes under the limits register.
func TestSchemaLimits(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	var enums []string
	for i := 0; i <= maxAvroNamedTypes; i++ {
		enums = append(enums, fmt.Sprintf(`{"type":"enum","name":"E%d","symbols":["A"]}`, i))
	}
	deep := `"int"`
	for range maxSchemaDepth + 1 {
		deep = `{"type":"array","items":` + deep + `}`
	}
	for _, tc := range []struct {
		name, text, why string
	}{
		{"nested defaults", nestedDefaults(17, 2, true), "field defaults"},
		{"flat union of defaults", nestedDefaults(17, 2, false), "field defaults"},
		{"wide defaults", nestedDefaults(7, 6, false), "field defaults"},
		{"named types", "[" + strings.Join(enums, ",") + "]", "named types"},
		{"depth", deep, "deep"},
		{"size", `{"type":"string","doc":"` + strings.Repeat("x", maxSchemaBytes) + `"}`, "bytes"},
	} {
		_, err := tr.reg.Register(ctx, "limits-"+tc.name, Schema{Type: Avro, Text: tc.text}, RegisterOptions{})
		var re *Error
		if !errors.As(err, &re) || re.Code != CodeInvalidSchema || re.Status != http.StatusUnprocessableEntity || !strings.Contains(re.Message, tc.why) {
			t.Errorf("%s: got %v, want a 42201 error about %s", tc.name, err, tc.why)
		}
	}
	for i, text := range []string{nestedDefaults(10, 2, true), nestedDefaults(10, 2, false), "[" + strings.Join(enums[:100], ",") + "]"} {
		if _, err := tr.reg.Register(ctx, fmt.Sprintf("ok%d", i), Schema{Type: Avro, Text: text}, RegisterOptions{}); err != nil {
			t.Errorf("schema %d under the limits: %v", i, err)
		}
	}
}

// TestRegisterParsesOutsideTheWriteLock: the schema is parsed while no
// one holds the registry's lock, so a slow parse does not stop reads and
// other writes.
func TestRegisterParsesOutsideTheWriteLock(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	must[SubjectSchema](t)(tr.reg.Register(ctx, "dep", Schema{Type: Avro, Text: `{"type":"record","name":"D","fields":[{"name":"a","type":"int"}]}`}, RegisterOptions{}))
	parses, locked := 0, 0
	tr.reg.parseHook = func() {
		parses++
		if !tr.reg.mu.TryLock() {
			locked++
			return
		}
		tr.reg.mu.Unlock()
	}
	s := Schema{Type: Avro, Text: `{"type":"record","name":"R","fields":[{"name":"d","type":"D"}]}`,
		References: []Reference{{Name: "D", Subject: "dep", Version: -1}}}
	must[SubjectSchema](t)(tr.reg.Register(ctx, "main", s, RegisterOptions{}))
	if parses == 0 || locked > 0 {
		t.Errorf("%d parses, %d of them under the lock", parses, locked)
	}
}
