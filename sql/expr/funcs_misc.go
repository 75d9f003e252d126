package expr

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"

	"github.com/valyala/fastjson"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/types"
)

// formatCache compiles date formats met at run time, keeping a bounded
// number of them.
type formatCache struct {
	mu sync.Mutex
	m  map[string]*dateFormat
}

func newFormatCache() *formatCache { return &formatCache{m: map[string]*dateFormat{}} }

func (fc *formatCache) get(p string) (*dateFormat, error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if f, ok := fc.m[p]; ok {
		return f, nil
	}
	f, err := compileDateFormat(p)
	if err != nil {
		return nil, err
	}
	if len(fc.m) >= 64 {
		clear(fc.m)
	}
	fc.m[p] = f
	return f, nil
}

func registerMisc(r *Registry) {
	r.det("COALESCE", func(b *call) (Compiled, error) {
		if err := b.argc(1, 1<<20); err != nil {
			return Compiled{}, err
		}
		ct, err := b.commonArgs(0)
		if err != nil {
			return Compiled{}, err
		}
		fs := evals(b.args)
		nn := false
		for _, a := range b.args {
			nn = nn || a.Type.NotNull
		}
		ct.NotNull = nn
		return b.result(ct, func(v []row.Value) row.Value {
			for _, f := range fs {
				if x := f(v); !x.IsNull() {
					return x
				}
			}
			return null
		})
	})
	r.det("IFNULL", func(b *call) (Compiled, error) {
		if err := b.argc(2, 2); err != nil {
			return Compiled{}, err
		}
		ct, err := b.commonArgs(0)
		if err != nil {
			return Compiled{}, err
		}
		f0, f1 := b.args[0].Eval, b.args[1].Eval
		ct.NotNull = b.args[1].Type.NotNull
		return b.result(ct, func(v []row.Value) row.Value {
			if x := f0(v); !x.IsNull() {
				return x
			}
			return f1(v)
		})
	})
	r.det("NULLIF", func(b *call) (Compiled, error) {
		if err := b.argc(2, 2); err != nil {
			return Compiled{}, err
		}
		cm, err := b.c.comparator(b.pos(), b.args[0], b.args[1])
		if err != nil {
			return Compiled{}, err
		}
		f0 := b.args[0].Eval
		lf, rf, cmp := cm.l, cm.r, cm.f
		return b.result(b.args[0].Type.Plain().WithNull(false), func(v []row.Value) row.Value {
			x := f0(v)
			if x.IsNull() {
				return x
			}
			l, r := lf(v), rf(v)
			if !r.IsNull() && cmp(l, r) == 0 {
				return null
			}
			return x
		})
	})
	r.det("IF", func(b *call) (Compiled, error) {
		if err := b.argc(3, 3); err != nil {
			return Compiled{}, err
		}
		if err := b.want(0, "a BOOLEAN", func(t types.Type) bool { return t.Kind == types.Boolean }); err != nil {
			return Compiled{}, err
		}
		ct, ok := commonType(b.args[1].Type, b.args[2].Type)
		if !ok {
			return Compiled{}, b.errorf("the two results have incompatible types %s and %s; CAST them to one type", typeName(b.args[1].Type), typeName(b.args[2].Type))
		}
		return b.c.caseOf(b.pos(), b.args[:1], b.args[1:], ct)
	})
	minmax := func(greatest bool) func(b *call) (Compiled, error) {
		return func(b *call) (Compiled, error) {
			if err := b.argc(1, 1<<20); err != nil {
				return Compiled{}, err
			}
			ct, err := b.commonArgs(0)
			if err != nil {
				return Compiled{}, err
			}
			cm, err := b.c.comparator(b.pos(), Compiled{Type: ct, Eval: b.args[0].Eval}, Compiled{Type: ct, Eval: b.args[0].Eval})
			if err != nil {
				return Compiled{}, err
			}
			cmp := cm.f
			return b.result(ct, mapN(b.args, func(vals []row.Value) row.Value {
				best := vals[0]
				for _, x := range vals[1:] {
					if c := cmp(x, best); greatest && c > 0 || !greatest && c < 0 {
						best = x
					}
				}
				return best
			}))
		}
	}
	r.det("GREATEST", minmax(true))
	r.det("LEAST", minmax(false))
	r.add("UUID", builtin{compile: func(b *call) (Compiled, error) {
		if err := b.argc(0, 0); err != nil {
			return Compiled{}, err
		}
		return Compiled{Type: tString.WithNull(true), Eval: func([]row.Value) row.Value { return row.String(newUUID()) }}, nil
	}})
	r.det("JSON_VALUE", jsonValue)
}

// commonArgs converts the arguments from index from on to their common
// type, in place.
func (b *call) commonArgs(from int) (types.Type, error) {
	ts := make([]types.Type, 0, len(b.args))
	for _, a := range b.args[from:] {
		ts = append(ts, a.Type)
	}
	ct, ok := commonType(ts...)
	if !ok {
		return types.Type{}, b.errorf("the arguments have incompatible types (%s); CAST them to one type", typeList(ts))
	}
	for i := from; i < len(b.args); i++ {
		x, err := b.c.convert(b.pos(), b.args[i], ct, false)
		if err != nil {
			return types.Type{}, err
		}
		b.args[i] = x
	}
	return ct, nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// jsonPath is a simple JSON path: $.a.b[0]['c'].
type jsonStep struct {
	key   string
	index int
	isIdx bool
}

func parseJSONPath(p string) ([]jsonStep, error) {
	if !strings.HasPrefix(p, "$") {
		return nil, errorf(ast.Pos{}, "a JSON path starts with $")
	}
	var steps []jsonStep
	i := 1
	for i < len(p) {
		switch p[i] {
		case '.':
			j := i + 1
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
			if j == i+1 {
				return nil, errorf(ast.Pos{}, "empty key in JSON path %q", p)
			}
			steps = append(steps, jsonStep{key: p[i+1 : j]})
			i = j
		case '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return nil, errorf(ast.Pos{}, "unclosed [ in JSON path %q", p)
			}
			inner := p[i+1 : i+j]
			if len(inner) >= 2 && (inner[0] == '\'' || inner[0] == '"') && inner[len(inner)-1] == inner[0] {
				steps = append(steps, jsonStep{key: inner[1 : len(inner)-1]})
			} else {
				n, err := strconv.Atoi(inner)
				if err != nil || n < 0 {
					return nil, errorf(ast.Pos{}, "invalid index [%s] in JSON path %q (wildcards and filters are not supported)", inner, p)
				}
				steps = append(steps, jsonStep{index: n, isIdx: true})
			}
			i += j + 1
		default:
			return nil, errorf(ast.Pos{}, "unexpected %q in JSON path %q", p[i], p)
		}
	}
	return steps, nil
}

// jsonValue is JSON_VALUE(json, path): the scalar at a simple path as a
// string; NULL when absent, not scalar, or the text is not JSON (Flink's
// default NULL ON EMPTY / NULL ON ERROR).
func jsonValue(b *call) (Compiled, error) {
	if err := b.argc(2, 2); err != nil {
		return Compiled{}, err
	}
	if err := b.want(0, "a JSON string", func(t types.Type) bool {
		return t.IsString() || t.Kind == types.Row || t.Kind == types.Map || t.Kind == types.Array
	}); err != nil {
		return Compiled{}, err
	}
	p, isNull, ok := b.constString(1)
	if !ok || isNull {
		return Compiled{}, b.errorf("the path must be a constant string like '$.a.b'")
	}
	steps, err := parseJSONPath(p)
	if err != nil {
		return Compiled{}, b.errorf("%v", strings.TrimPrefix(err.Error(), ast.Pos{}.String()+": "))
	}
	var pool fastjson.ParserPool
	return b.result(tString, map1(b.args[0].Eval, func(a row.Value) row.Value {
		ps := pool.Get()
		defer pool.Put(ps)
		v, err := ps.Parse(a.AsString())
		if err != nil {
			return null
		}
		for _, st := range steps {
			if st.isIdx {
				arr, err := v.Array()
				if err != nil || st.index >= len(arr) {
					return null
				}
				v = arr[st.index]
			} else {
				if v.Type() != fastjson.TypeObject {
					return null
				}
				v = v.Get(st.key)
				if v == nil {
					return null
				}
			}
		}
		switch v.Type() {
		case fastjson.TypeString:
			return row.String(string(v.GetStringBytes()))
		case fastjson.TypeNumber:
			return row.String(v.String())
		case fastjson.TypeTrue:
			return row.String("true")
		case fastjson.TypeFalse:
			return row.String("false")
		}
		return null
	}))
}
