package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// JSON Schema compatibility as Confluent's registry checks it, for the
// main rules: the reader's schema (the update) must accept every document
// the writer's schema (the original) accepts. Checked here:
//
//   - types: a type set may grow (integer to number, string to
//     [string, null]) but not shrink or change; a schema that accepts
//     everything reads anything; nothing reads into false;
//   - objects and their content model: open (no additionalProperties, or
//     true, and no patternProperties), closed (additionalProperties false)
//     or partially open (an additionalProperties schema or
//     patternProperties). A property removed is compatible when the
//     reader's model is open, or partially open with a schema that reads
//     the removed property's; incompatible when closed. A property added is
//     incompatible when the writer's model is open (old data may hold
//     anything under that name) unless its schema accepts everything, and
//     compatible when the writer's model is closed, or partially open with
//     a schema the new property reads, unless it is required without a
//     default. additionalProperties may be allowed, not taken away;
//   - required: a property may stop being required; becoming required
//     needs a default;
//   - bounds: maxLength, maximum, exclusiveMaximum, maxItems,
//     maxProperties may grow or go, not appear or shrink; their minimum
//     counterparts likewise the other way; a pattern or uniqueItems may go,
//     not appear or change; multipleOf may become a divisor;
//   - enum values and const: the reader's must hold the writer's;
//   - arrays: items compared recursively, tuple positions (items as an
//     array, or prefixItems) by position with the content model of
//     additionalItems;
//   - anyOf and oneOf may gain branches (each writer branch must be read
//     by some reader branch), allOf may lose them; a schema may become a
//     union holding a branch that reads it; a one-branch combination is
//     its branch;
//   - $ref: resolved within the document (JSON pointers) and against the
//     schema's references.
//
// Not covered: dependencies and dependentSchemas, not, if/then/else,
// format, contentEncoding, $anchor references; a $ref that cannot be
// resolved is taken to accept everything.

type jsonCompat struct {
	o, u *jsonSchemaDoc
	seen map[string]bool
	done checked[string] // pairs of $ref targets
	msgs []string
}

func (c *jsonCompat) fail(path, format string, args ...any) {
	c.msgs = append(c.msgs, path+": "+fmt.Sprintf(format, args...))
}

// reads reports, without recording why not, whether u reads o.
func (c *jsonCompat) reads(o, u any, od, ud *jsonDoc) bool {
	sub := jsonCompat{o: c.o, u: c.u, seen: c.seen, done: c.done}
	sub.compare(o, u, od, ud, "#")
	return len(sub.msgs) == 0
}

// jsonDeref follows $ref (which replaces its siblings, as in draft-07) to the
// schema it names; key identifies the target for the recursion guard.
func jsonDeref(s any, d *jsonDoc, docs map[string]*jsonDoc) (any, *jsonDoc, string) {
	key := ""
	for range 32 {
		m, ok := s.(map[string]any)
		if !ok {
			return s, d, key
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return s, d, key
		}
		target, frag, _ := strings.Cut(ref, "#")
		nd := d
		if target != "" {
			u := resolveURL(d.base, target)
			if nd = docs[u]; nd == nil {
				return true, d, key // unresolvable: accepts everything
			}
		}
		v, ok := pointer(nd.root, frag)
		if !ok {
			return true, d, key
		}
		s, d, key = v, nd, nd.base+"#"+frag
	}
	return true, d, key
}

// pointer resolves a JSON pointer fragment within doc.
func pointer(doc any, frag string) (any, bool) {
	if frag == "" {
		return doc, true
	}
	if !strings.HasPrefix(frag, "/") {
		return nil, false // $anchor names are not resolved
	}
	cur := doc
	for _, tok := range strings.Split(frag[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// annotations are keywords that do not constrain documents.
var annotations = map[string]bool{
	"$schema": true, "$id": true, "id": true, "$comment": true, "title": true, "description": true,
	"default": true, "examples": true, "definitions": true, "$defs": true, "readOnly": true, "writeOnly": true,
	"deprecated": true, "$anchor": true, "format": true,
}

// acceptsAll reports whether a schema accepts every document.
func acceptsAll(s any) bool {
	switch v := s.(type) {
	case bool:
		return v
	case map[string]any:
		for k := range v {
			if !annotations[k] {
				return false
			}
		}
		return true
	}
	return false
}

// combination returns a schema's anyOf, oneOf or allOf.
func combination(s any) (string, []any) {
	m, ok := s.(map[string]any)
	if !ok {
		return "", nil
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		if subs, ok := m[k].([]any); ok {
			return k, subs
		}
	}
	return "", nil
}

func (c *jsonCompat) compare(o, u any, od, ud *jsonDoc, path string) {
	var ok, uk string
	o, od, ok = jsonDeref(o, od, c.o.docs)
	u, ud, uk = jsonDeref(u, ud, c.u.docs)
	if ok != "" || uk != "" {
		key := ok + "\x00" + uk
		if c.seen[key] || c.done.seenBefore(key, path, c.fail) {
			return
		}
		c.seen[key] = true
		before := len(c.msgs)
		defer func() {
			delete(c.seen, key)
			c.done.record(key, path, before, len(c.msgs))
		}()
	}
	if acceptsAll(u) || o == false {
		return
	}
	if u == false {
		c.fail(path, "the reader's schema accepts nothing")
		return
	}
	if acceptsAll(o) {
		c.fail(path, "the reader's schema is narrower than the writer's, which accepts everything")
		return
	}
	om, ok1 := o.(map[string]any)
	uom, ok2 := u.(map[string]any)
	if !ok1 || !ok2 {
		return // not a schema; compilation rejects these
	}

	ocrit, osubs := combination(o)
	ucrit, usubs := combination(u)
	switch {
	case ocrit == "" && ucrit != "":
		if len(usubs) == 1 {
			c.compare(o, usubs[0], od, ud, path)
			return
		}
		if ucrit != "allOf" {
			for _, b := range usubs {
				if c.reads(o, b, od, ud) {
					return
				}
			}
		}
		c.fail(path, "no branch of the reader's %s reads the writer's schema", ucrit)
		return
	case ocrit != "" && ucrit == "":
		if len(osubs) == 1 {
			c.compare(osubs[0], u, od, ud, path)
			return
		}
		c.fail(path, "the writer's %s became a single schema", ocrit)
		return
	case ocrit != "":
		if ocrit != ucrit {
			c.fail(path, "%s changed to %s", ocrit, ucrit)
			return
		}
		if ocrit == "allOf" {
			for i, b := range usubs {
				if !slices.ContainsFunc(osubs, func(a any) bool { return c.reads(a, b, od, ud) }) {
					c.fail(fmt.Sprintf("%s/allOf/%d", path, i), "the reader's allOf gained a constraint")
				}
			}
		} else {
			for i, a := range osubs {
				if !slices.ContainsFunc(usubs, func(b any) bool { return c.reads(a, b, od, ud) }) {
					c.fail(fmt.Sprintf("%s/%s/%d", path, ocrit, i), "no branch of the reader's %s reads this writer branch", ucrit)
				}
			}
		}
		return
	}

	ot, ut := typesOf(om), typesOf(uom)
	if ut != nil {
		if ot == nil {
			c.fail(path, "the reader's schema restricts the type to %s", strings.Join(sortedKeys(ut), ", "))
			return
		}
		for t := range ot {
			if !ut[t] && !(t == "integer" && ut["number"]) {
				c.fail(path, "type %s is not in the reader's types %s", t, strings.Join(sortedKeys(ut), ", "))
			}
		}
	}
	c.compareEnum(om, uom, path)
	has := func(t string) bool { return ot == nil || ot[t] || (t == "number" && ot["integer"]) }
	if has("string") {
		c.upper(om, uom, "maxLength", path)
		c.lower(om, uom, "minLength", path)
		if up, ok := uom["pattern"]; ok && !reflect.DeepEqual(om["pattern"], up) {
			c.fail(path+"/pattern", "pattern added or changed")
		}
	}
	if has("number") {
		c.upper(om, uom, "maximum", path)
		c.upper(om, uom, "exclusiveMaximum", path)
		c.lower(om, uom, "minimum", path)
		c.lower(om, uom, "exclusiveMinimum", path)
		c.multipleOf(om, uom, path)
	}
	if has("object") {
		c.object(om, uom, od, ud, path)
	}
	if has("array") {
		c.array(om, uom, od, ud, path)
	}
}

// typesOf returns the types a schema allows, from "type" or, without it,
// from the keywords it uses; nil means any type.
func typesOf(m map[string]any) map[string]bool {
	switch t := m["type"].(type) {
	case string:
		return map[string]bool{t: true}
	case []any:
		set := map[string]bool{}
		for _, e := range t {
			if s, ok := e.(string); ok {
				set[s] = true
			}
		}
		return set
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (c *jsonCompat) compareEnum(o, u map[string]any, path string) {
	if uc, ok := u["const"]; ok {
		if oc, ok := o["const"]; !ok || !jsonEqual(oc, uc) {
			c.fail(path+"/const", "const added or changed")
		}
	}
	ue, ok := u["enum"].([]any)
	if !ok {
		return
	}
	oe, ok := o["enum"].([]any)
	if !ok {
		if oc, ok := o["const"]; ok {
			oe = []any{oc}
		} else {
			c.fail(path+"/enum", "enum added")
			return
		}
	}
	for _, v := range oe {
		if !slices.ContainsFunc(ue, func(w any) bool { return jsonEqual(v, w) }) {
			c.fail(path+"/enum", "the reader's enum lacks %v", v)
		}
	}
}

func jsonEqual(a, b any) bool {
	if x, ok := number(a); ok {
		y, ok := number(b)
		return ok && x == y
	}
	return reflect.DeepEqual(a, b)
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// upper compares an upper bound: the reader's may grow or go.
func (c *jsonCompat) upper(o, u map[string]any, kw, path string) {
	un, uok := number(u[kw])
	if !uok {
		return
	}
	on, ook := number(o[kw])
	switch {
	case !ook:
		c.fail(path+"/"+kw, "%s added", kw)
	case un < on:
		c.fail(path+"/"+kw, "%s decreased from %v to %v", kw, on, un)
	}
}

// lower compares a lower bound: the reader's may shrink or go.
func (c *jsonCompat) lower(o, u map[string]any, kw, path string) {
	un, uok := number(u[kw])
	if !uok {
		return
	}
	on, ook := number(o[kw])
	switch {
	case !ook:
		c.fail(path+"/"+kw, "%s added", kw)
	case un > on:
		c.fail(path+"/"+kw, "%s increased from %v to %v", kw, on, un)
	}
}

func (c *jsonCompat) multipleOf(o, u map[string]any, path string) {
	un, uok := number(u["multipleOf"])
	if !uok {
		return
	}
	on, ook := number(o["multipleOf"])
	if !ook {
		c.fail(path+"/multipleOf", "multipleOf added")
		return
	}
	if q := on / un; un == 0 || q != math.Trunc(q) {
		c.fail(path+"/multipleOf", "multipleOf changed from %v to %v, which does not divide it", on, un)
	}
}

func props(m map[string]any) map[string]any {
	p, _ := m["properties"].(map[string]any)
	return p
}

func required(m map[string]any) map[string]bool {
	set := map[string]bool{}
	if r, ok := m["required"].([]any); ok {
		for _, e := range r {
			if s, ok := e.(string); ok {
				set[s] = true
			}
		}
	}
	return set
}

func hasDefault(s any) bool {
	m, ok := s.(map[string]any)
	if !ok {
		return false
	}
	_, ok = m["default"]
	return ok
}

// openContent reports an open content model: any other property allowed,
// with any value.
func openContent(m map[string]any) bool {
	if pp, ok := m["patternProperties"].(map[string]any); ok && len(pp) > 0 {
		return false
	}
	ap, ok := m["additionalProperties"]
	return !ok || ap == true
}

// partialSchema returns the schema a partially open content model gives an
// undeclared property: a matching patternProperties schema, else an
// additionalProperties schema; nil when none does.
func partialSchema(m map[string]any, name string) any {
	if pp, ok := m["patternProperties"].(map[string]any); ok {
		keys := make([]string, 0, len(pp))
		for k := range pp {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if re, err := regexp.Compile(k); err == nil && re.MatchString(name) {
				return pp[k]
			}
		}
	}
	if ap, ok := m["additionalProperties"].(map[string]any); ok {
		return ap
	}
	return nil
}

func permitsAdditional(m map[string]any) bool {
	return m["additionalProperties"] != false
}

func (c *jsonCompat) object(o, u map[string]any, od, ud *jsonDoc, path string) {
	op, up := props(o), props(u)
	oreq, ureq := required(o), required(u)
	names := map[string]bool{}
	for k := range op {
		names[k] = true
	}
	for k := range up {
		names[k] = true
	}
	for _, name := range sortedKeys(names) {
		ppath := path + "/properties/" + name
		os, inO := op[name]
		us, inU := up[name]
		switch {
		case inO && inU:
			if !oreq[name] && ureq[name] && !hasDefault(us) {
				c.fail(ppath, "property became required without a default")
			}
			c.compare(os, us, od, ud, ppath)
		case inO:
			if openContent(u) {
				continue
			}
			if ps := partialSchema(u, name); ps != nil {
				if !c.reads(os, ps, od, ud) {
					c.fail(ppath, "property removed and the reader's additional or pattern properties do not read it")
				}
				continue
			}
			if os != false {
				c.fail(ppath, "property removed from a closed content model")
			}
		default:
			if openContent(o) {
				if !acceptsAll(us) {
					c.fail(ppath, "property added to an open content model")
				}
				continue
			}
			if ps := partialSchema(o, name); ps != nil && !c.reads(ps, us, od, ud) {
				c.fail(ppath, "property added that the writer's additional or pattern properties are not read by")
			}
			if ureq[name] && !hasDefault(us) {
				c.fail(ppath, "required property added without a default")
			}
		}
	}
	if permitsAdditional(o) && !permitsAdditional(u) {
		c.fail(path+"/additionalProperties", "additional properties no longer allowed")
	} else if permitsAdditional(o) {
		oap, oIs := o["additionalProperties"].(map[string]any)
		uap, uIs := u["additionalProperties"].(map[string]any)
		switch {
		case !oIs && uIs && !acceptsAll(uap):
			c.fail(path+"/additionalProperties", "additional properties narrowed to a schema")
		case oIs && uIs:
			c.compare(oap, uap, od, ud, path+"/additionalProperties")
		}
	}
	c.upper(o, u, "maxProperties", path)
	c.lower(o, u, "minProperties", path)
}

// tuple returns an array schema's positional item schemas and the schema
// of the items past them (true when unconstrained).
func tuple(m map[string]any) (positional []any, rest any, isTuple bool) {
	if pi, ok := m["prefixItems"].([]any); ok {
		rest = any(true)
		if it, ok := m["items"]; ok {
			rest = it
		}
		return pi, rest, true
	}
	if it, ok := m["items"].([]any); ok {
		rest = any(true)
		if ai, ok := m["additionalItems"]; ok {
			rest = ai
		}
		return it, rest, true
	}
	return nil, nil, false
}

func (c *jsonCompat) array(o, u map[string]any, od, ud *jsonDoc, path string) {
	opos, orest, otup := tuple(o)
	upos, urest, utup := tuple(u)
	switch {
	case !otup && !utup:
		oi, ok := o["items"]
		if !ok {
			oi = true
		}
		ui, ok := u["items"]
		if !ok {
			ui = true
		}
		c.compare(oi, ui, od, ud, path+"/items")
	case otup && utup:
		for i := range max(len(opos), len(upos)) {
			ipath := fmt.Sprintf("%s/items/%d", path, i)
			switch {
			case i < len(opos) && i < len(upos):
				c.compare(opos[i], upos[i], od, ud, ipath)
			case i < len(opos):
				c.compare(opos[i], urest, od, ud, ipath) // removed: the reader's rest must read it
			default:
				c.compare(orest, upos[i], od, ud, ipath) // added: must read what the writer allowed there
			}
		}
		c.compare(orest, urest, od, ud, path+"/additionalItems")
	default:
		c.fail(path+"/items", "items changed between one schema and a tuple")
	}
	c.upper(o, u, "maxItems", path)
	c.lower(o, u, "minItems", path)
	if u["uniqueItems"] == true && o["uniqueItems"] != true {
		c.fail(path+"/uniqueItems", "uniqueItems added")
	}
}
