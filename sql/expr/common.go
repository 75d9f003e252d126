package expr

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/sql/types"
)

// CommonType is the type both a and b convert to implicitly (for UNION
// columns, VALUES rows, CASE branches): the least restrictive of the
// two, nullable when either is.
func CommonType(a, b types.Type) (types.Type, error) {
	t, ok := common2(a, b)
	if !ok {
		return types.Type{}, fmt.Errorf("%s and %s have no common type; CAST one of them", a.Plain(), b.Plain())
	}
	return t, nil
}

// Unregister removes a function registered with RegisterScalar (DROP
// FUNCTION) and reports whether there was one. Built-in functions stay.
func (r *Registry) Unregister(name string) bool {
	name = strings.ToUpper(strings.TrimSpace(name))
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.udfs[name]
	delete(r.udfs, name)
	return ok
}
