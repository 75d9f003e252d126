package avrolimit

import (
	"strings"
	"testing"
)

// TestDefaultWorkGrowsAsHambaDoes: the count of the work of checking
// defaults doubles with each record of two fields of the previous one's
// type, as hamba/avro's own check does, whether the records are nested
// or named in a flat union; and Check refuses a schema once the count
// passes MaxDefaultWork.
func TestDefaultWorkGrowsAsHambaDoes(t *testing.T) {
	for _, inline := range []bool{true, false} {
		prev := 0
		for n := 1; n <= 12; n++ {
			w := DefaultWork(NestedDefaults(n, 2, inline))
			if prev > 0 && w < 2*prev {
				t.Errorf("inline %v: n=%d: %d steps, n=%d: %d: not doubling", inline, n-1, prev, n, w)
			}
			prev = w
		}
		if w := DefaultWork(NestedDefaults(3, 10, inline)); w < 1000 {
			t.Errorf("inline %v: three records of ten fields: %d steps, want over 10^3", inline, w)
		}
		for n := 1; n < 30; n++ {
			text := NestedDefaults(n, 2, inline)
			err := Check(text, nil)
			over := DefaultWork(text) > MaxDefaultWork
			if over != (err != nil) || err != nil && !strings.Contains(err.Error(), "field defaults") {
				t.Errorf("inline %v, n=%d: %d steps, Check: %v", inline, n, DefaultWork(text), err)
			}
			if over {
				break
			}
		}
	}
}

// TestNamesResolveInNamespaces: a default's records are found through
// namespaces as Avro resolves names (a short name in the enclosing
// namespace, a full name as it is), so a crafted schema cannot hide its
// nesting behind namespaces.
func TestNamesResolveInNamespaces(t *testing.T) {
	text := `[{"type":"record","name":"T0","namespace":"a.b","fields":[{"name":"x","type":"int","default":0}]},
		{"type":"record","name":"a.b.T1","fields":[{"name":"f","type":"T0","default":{}},{"name":"g","type":"a.b.T0","default":{}}]},
		{"type":"record","name":"T2","namespace":"c","fields":[{"name":"f","type":"a.b.T1","default":{}}]}]`
	// T1's fields: 2 × (T0 + x) = 4; T2's field: T1 + its two fields'
	// records and ints = 1 + 2 × 2 = 5; T0's x: 1.
	if w := DefaultWork(text); w != 10 {
		t.Errorf("%d steps, want 10", w)
	}
}
