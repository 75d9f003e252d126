package pipeline

import (
	"fmt"

	"github.com/sluicehq/sluice/row"
)

// chain is a run of stateless steps (filter, map, set) applied record by
// record with no exchange between them. It is immutable after planning and
// safe for concurrent use.
type chain struct {
	ops []chainOp
}

type opKind uint8

const (
	opFilter opKind = iota
	opMap
	opSet
)

type chainOp struct {
	kind  opKind
	stage string // "steps[2].filter", for errors
	pred  *expression
	exprs []*expression
	// names of the assigned fields (for errors).
	names []string
	// targets are the output positions of a set's expressions.
	targets []int
	// outLen is the row length after a map or a closed set.
	outLen int
	// inPlace: an open-phase set may write into the decoded row's own
	// values (when it runs in the source split).
	inPlace bool
	// in is the schema of the op's input, for dead letters.
	in func() *row.Schema
}

// stepError is a record-level failure in a step.
type stepError struct {
	stage string
	err   error
	row   row.Row
	in    *row.Schema
}

func (e *stepError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// apply runs the chain on r. It returns keep == false for a record a
// filter dropped. arena, if not nil, provides value slices (per-split).
func (c *chain) apply(r row.Row, arena *row.Arena) (row.Row, bool, error) {
	for i := range c.ops {
		op := &c.ops[i]
		switch op.kind {
		case opFilter:
			ok, err := op.pred.evalBool(r.Vals)
			if err != nil {
				return r, false, &stepError{stage: op.stage, err: err, row: r, in: op.in()}
			}
			if !ok {
				return r, false, nil
			}
		case opMap:
			var out []row.Value
			if arena != nil {
				out = arena.Values(op.outLen)
			} else {
				out = make([]row.Value, op.outLen)
			}
			for j, x := range op.exprs {
				v, err := x.eval(r.Vals)
				if err != nil {
					return r, false, &stepError{stage: op.stage + "." + op.names[j], err: err, row: r, in: op.in()}
				}
				out[j] = v
			}
			r = row.Row{Vals: out}
		case opSet:
			// Evaluate every expression against the input first: a set is
			// simultaneous, like a map that keeps the other fields.
			var tmp [8]row.Value
			vals := tmp[:0]
			for j, x := range op.exprs {
				v, err := x.eval(r.Vals)
				if err != nil {
					return r, false, &stepError{stage: op.stage + "." + op.names[j], err: err, row: r, in: op.in()}
				}
				vals = append(vals, v)
			}
			// In place only on a row just decoded in this split; rows that
			// went through other operators may be held by them (a join
			// keeps its inputs), so they are copied.
			if !op.inPlace || arena == nil {
				n := max(op.outLen, len(r.Vals))
				var out []row.Value
				if arena != nil {
					out = arena.Values(n)
				} else {
					out = make([]row.Value, n)
				}
				copy(out, r.Vals)
				r = row.Row{Vals: out, Rest: r.Rest}
			}
			for j, v := range vals {
				r.Vals[op.targets[j]] = v
			}
		default:
			panic(fmt.Sprintf("pipeline: unknown chain op %d", op.kind))
		}
	}
	return r, true, nil
}

func (c *chain) empty() bool { return c == nil || len(c.ops) == 0 }
