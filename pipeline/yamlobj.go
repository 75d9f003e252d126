package pipeline

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// errs collects spec errors while a spec is read, so that one run reports
// every problem it can find.
type errs struct {
	file string
	list SpecErrors
	// cluster: the spec has a cluster section, whose brokers serve the
	// kafka blocks that name none.
	cluster bool
	// src is the spec's text (to place errors inside block scalars).
	src []byte
}

func (e *errs) at(n *yaml.Node, field, format string, args ...any) {
	se := &SpecError{File: e.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		se.Line, se.Column = n.Line, n.Column
	}
	e.list = append(e.list, se)
}

func (e *errs) err() error {
	if len(e.list) == 0 {
		return nil
	}
	if len(e.list) == 1 {
		return e.list[0]
	}
	return e.list
}

// obj is a YAML mapping being read: it remembers which keys were used so
// that the rest can be reported as unknown.
type obj struct {
	e    *errs
	node *yaml.Node
	path string
	keys []string
	vals map[string]*yaml.Node
	knod map[string]*yaml.Node
	used map[string]bool
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return resolve(n.Content[0])
	}
	return n
}

// newObj reads n as a mapping; it reports an error and returns nil if n
// is not one.
func newObj(e *errs, n *yaml.Node, path, what string) *obj {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		e.at(n, path, "must be a mapping (%s), not %s", what, describe(n))
		return nil
	}
	o := &obj{e: e, node: n, path: path, vals: map[string]*yaml.Node{}, knod: map[string]*yaml.Node{}, used: map[string]bool{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			e.at(k, path, "keys must be plain names")
			continue
		}
		if _, dup := o.vals[k.Value]; dup {
			e.at(k, o.sub(k.Value), "appears twice")
			continue
		}
		o.keys = append(o.keys, k.Value)
		o.vals[k.Value] = v
		o.knod[k.Value] = k
	}
	return o
}

func describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			return "an empty list"
		}
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unsupported YAML node"
}

func (o *obj) sub(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

func (o *obj) has(key string) bool {
	_, ok := o.vals[key]
	return ok
}

// get marks key used and returns its value node, or nil.
func (o *obj) get(key string) *yaml.Node {
	v, ok := o.vals[key]
	if !ok {
		return nil
	}
	o.used[key] = true
	return resolve(v)
}

// done reports every key not read as unknown, listing the allowed ones.
func (o *obj) done(allowed ...string) {
	if o == nil {
		return
	}
	sort.Strings(allowed)
	for _, k := range o.keys {
		if !o.used[k] {
			o.e.at(o.knod[k], o.sub(k), "unknown key; allowed here: %s", strings.Join(allowed, ", "))
		}
	}
}

func (o *obj) scalar(key string) (*yaml.Node, bool) {
	v := o.get(key)
	if v == nil {
		return nil, false
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return v, false
	}
	return v, true
}

// str reads an optional string.
func (o *obj) str(key, def string) string {
	v, ok := o.scalar(key)
	if v == nil {
		return def
	}
	if !ok {
		o.e.at(v, o.sub(key), "must be a string, not %s", describe(v))
		return def
	}
	return v.Value
}

// reqStr reads a required non-empty string.
func (o *obj) reqStr(key, what string) string {
	if !o.has(key) {
		o.e.at(o.node, o.sub(key), "is required (%s)", what)
		return ""
	}
	s := o.str(key, "")
	if s == "" && o.e != nil {
		if v := o.get(key); v != nil && v.Kind == yaml.ScalarNode {
			o.e.at(v, o.sub(key), "must not be empty (%s)", what)
		}
	}
	return s
}

// enum reads an optional string that must be one of allowed.
func (o *obj) enum(key, def string, allowed ...string) string {
	v := o.get(key)
	if v == nil {
		return def
	}
	if v.Kind == yaml.ScalarNode {
		for _, a := range allowed {
			if v.Value == a {
				return a
			}
		}
	}
	o.e.at(v, o.sub(key), "is %s; allowed: %s", describe(v), strings.Join(allowed, ", "))
	return def
}

func (o *obj) boolean(key string, def bool) bool {
	v, ok := o.scalar(key)
	if v == nil {
		return def
	}
	if ok {
		switch v.Value {
		case "true", "yes", "on":
			return true
		case "false", "no", "off":
			return false
		}
	}
	o.e.at(v, o.sub(key), "must be true or false, not %s", describe(v))
	return def
}

// integer reads an optional integer in [lo, hi].
func (o *obj) integer(key string, def, lo, hi int64) int64 {
	v, ok := o.scalar(key)
	if v == nil {
		return def
	}
	if ok {
		s := strings.ReplaceAll(v.Value, "_", "")
		if i, err := strconv.ParseInt(s, 0, 64); err == nil {
			if i < lo || i > hi {
				o.e.at(v, o.sub(key), "is %d; allowed: an integer from %d to %d", i, lo, hi)
				return def
			}
			return i
		}
	}
	o.e.at(v, o.sub(key), "must be an integer, not %s", describe(v))
	return def
}

// number reads an optional number in [lo, hi].
func (o *obj) number(key string, def, lo, hi float64) float64 {
	v, ok := o.scalar(key)
	if v == nil {
		return def
	}
	if ok {
		if f, err := strconv.ParseFloat(strings.ReplaceAll(v.Value, "_", ""), 64); err == nil && !math.IsNaN(f) {
			if f < lo || f > hi {
				o.e.at(v, o.sub(key), "is %v; allowed: a number from %v to %v", f, lo, hi)
				return def
			}
			return f
		}
	}
	o.e.at(v, o.sub(key), "must be a number, not %s", describe(v))
	return def
}

// duration reads an optional duration like "5s", "1m30s", "250ms"; a bare
// 0 is allowed. positive demands > 0.
func (o *obj) duration(key string, def time.Duration, positive bool) time.Duration {
	v := o.get(key)
	if v == nil {
		return def
	}
	d, err := parseDuration(v)
	if err != nil {
		o.e.at(v, o.sub(key), "%v", err)
		return def
	}
	if positive && d <= 0 {
		o.e.at(v, o.sub(key), "must be a positive duration like 10s")
		return def
	}
	if d < 0 {
		o.e.at(v, o.sub(key), "must not be negative")
		return def
	}
	return d
}

func parseDuration(v *yaml.Node) (time.Duration, error) {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return 0, fmt.Errorf("must be a duration like 500ms, 10s, 5m or 1h, not %s", describe(v))
	}
	return ParseDuration(v.Value)
}

// maxDays is the most whole days a time.Duration holds.
const maxDays = math.MaxInt64 / int64(24*time.Hour)

// ParseDuration reads a duration as specs write them: "0", Go's forms
// (500ms, 10s, 1m30s, 1h) or whole days (7d). Its error says which forms
// are allowed. The sluice command's duration flags read the same.
func ParseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	// Accept days, which time.ParseDuration does not know.
	if strings.HasSuffix(s, "d") {
		if n, err := strconv.ParseInt(strings.TrimSuffix(s, "d"), 10, 64); err == nil {
			if n > maxDays || n < -maxDays {
				return 0, fmt.Errorf("%q is longer than a duration holds (%d days)", s, maxDays)
			}
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("must be a duration like 500ms, 10s, 5m, 1h or 7d, not %q", s)
	}
	return d, nil
}

// strList reads an optional list of strings; a single string is a list of
// one.
func (o *obj) strList(key string) []string {
	v := o.get(key)
	if v == nil {
		return nil
	}
	if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		return []string{v.Value}
	}
	if v.Kind != yaml.SequenceNode {
		o.e.at(v, o.sub(key), "must be a list of strings, not %s", describe(v))
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for i, it := range v.Content {
		it = resolve(it)
		if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
			o.e.at(it, fmt.Sprintf("%s[%d]", o.sub(key), i), "must be a string, not %s", describe(it))
			continue
		}
		out = append(out, it.Value)
	}
	return out
}

// object reads an optional nested mapping.
func (o *obj) object(key, what string) *obj {
	v := o.get(key)
	if v == nil {
		return nil
	}
	return newObj(o.e, v, o.sub(key), what)
}

// pos returns the position of key's value, or of the mapping itself.
func (o *obj) pos(key string) Pos {
	n := o.vals[key]
	if n == nil {
		n = o.node
	}
	return Pos{File: o.e.file, Line: n.Line, Column: n.Column, Field: o.sub(key)}
}

// Pos is where something is in a spec file, for error messages.
type Pos struct {
	File   string
	Line   int
	Column int
	Field  string
}

func (p Pos) errorf(format string, args ...any) *SpecError {
	return &SpecError{File: p.File, Line: p.Line, Column: p.Column, Field: p.Field, Msg: fmt.Sprintf(format, args...)}
}
