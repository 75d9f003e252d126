package schema

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/avrolimit"
)

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
		{"nested defaults", avrolimit.NestedDefaults(17, 2, true), "field defaults"},
		{"flat union of defaults", avrolimit.NestedDefaults(17, 2, false), "field defaults"},
		{"wide defaults", avrolimit.NestedDefaults(7, 6, false), "field defaults"},
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
	for i, text := range []string{avrolimit.NestedDefaults(10, 2, true), avrolimit.NestedDefaults(10, 2, false), "[" + strings.Join(enums[:100], ",") + "]"} {
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
