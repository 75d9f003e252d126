package pipeline

import "github.com/sluicehq/sluice/row"

// fieldSet is a schema under construction. While a pipeline's rows still
// have the shape of its input (before the first map or window), the set is
// open: a name a step uses that is not known yet becomes a new input field
// (extracted by the decoder, null when absent). Once closed, only its
// fields exist and any other name is an error.
type fieldSet struct {
	names []string
	kinds []row.Kind
	idx   map[string]int
	open  bool
	// hint, if set, gives the kind of a field when it is added (an avro
	// input's schema knows its fields' kinds).
	hint func(name string) row.Kind
	// allow, when set, bounds an open set: only these names (the fields
	// of a protobuf message, with their kinds) may be added.
	allow      map[string]row.Kind
	allowNames []string
}

func newFieldSet(open bool) *fieldSet { return &fieldSet{idx: map[string]int{}, open: open} }

// add returns the position of name, adding it if new.
func (f *fieldSet) add(name string) int {
	if i, ok := f.idx[name]; ok {
		return i
	}
	f.idx[name] = len(f.names)
	f.names = append(f.names, name)
	k := row.KindNull
	if f.hint != nil {
		k = f.hint(name)
	}
	f.kinds = append(f.kinds, k)
	return len(f.names) - 1
}

// resolve is a fieldResolver: open sets grow, closed ones only look up.
func (f *fieldSet) resolve(name string) (int, bool) {
	if i, ok := f.idx[name]; ok {
		return i, true
	}
	if !f.open {
		return 0, false
	}
	if f.allow != nil {
		k, ok := f.allow[name]
		if !ok {
			return 0, false
		}
		i := f.add(name)
		f.kinds[i] = k
		return i, true
	}
	return f.add(name), true
}

// known lists the names a step may use here, for messages.
func (f *fieldSet) known() []string {
	if f.open && f.allow != nil {
		return f.allowNames
	}
	return f.names
}

func (f *fieldSet) schema() *row.Schema {
	fs := make([]row.Field, len(f.names))
	for i, n := range f.names {
		fs[i] = row.Field{Name: n, Kind: f.kinds[i]}
	}
	return row.MustSchema(fs...)
}

func (f *fieldSet) clone() *fieldSet {
	c := &fieldSet{names: append([]string(nil), f.names...), kinds: append([]row.Kind(nil), f.kinds...), idx: make(map[string]int, len(f.idx)), open: f.open, hint: f.hint, allow: f.allow, allowNames: f.allowNames}
	for k, v := range f.idx {
		c.idx[k] = v
	}
	return c
}
