package exec_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// weightedAvg is Flink's classic user-defined aggregate: the average of
// its first argument weighted by its second, as a BIGINT.
type weightedAvg struct{}

func (weightedAvg) Name() string                        { return "WEIGHTED_AVG" }
func (weightedAvg) CreateAccumulator() exec.Accumulator { return &wavgAcc{} }

func (weightedAvg) DecodeAccumulator(b []byte) (exec.Accumulator, error) {
	sum, n := binary.Varint(b)
	if n <= 0 {
		return nil, errors.New("WEIGHTED_AVG: bad sum")
	}
	w, m := binary.Varint(b[n:])
	if m <= 0 || n+m != len(b) {
		return nil, errors.New("WEIGHTED_AVG: bad weight")
	}
	return &wavgAcc{sum: sum, weight: w}, nil
}

type wavgAcc struct{ sum, weight int64 }

func (a *wavgAcc) Accumulate(args []row.Value) {
	if !args[0].IsNull() && !args[1].IsNull() {
		a.sum += args[0].AsInt() * args[1].AsInt()
		a.weight += args[1].AsInt()
	}
}

// Retract makes the function usable on updating input.
func (a *wavgAcc) Retract(args []row.Value) {
	if !args[0].IsNull() && !args[1].IsNull() {
		a.sum -= args[0].AsInt() * args[1].AsInt()
		a.weight -= args[1].AsInt()
	}
}

// Merge makes it usable in session windows.
func (a *wavgAcc) Merge(o exec.Accumulator) {
	b := o.(*wavgAcc)
	a.sum += b.sum
	a.weight += b.weight
}

func (a *wavgAcc) Value() row.Value {
	if a.weight == 0 {
		return row.Value{}
	}
	return row.Int(a.sum / a.weight)
}

func (a *wavgAcc) AppendBinary(dst []byte) []byte {
	return binary.AppendVarint(binary.AppendVarint(dst, a.sum), a.weight)
}

// A user-defined aggregate in a GROUP BY over an updating input:
// SELECT item, WEIGHTED_AVG(price, qty) FROM orders GROUP BY item.
func ExampleAggregateFunction() {
	ins := func(item string, price, qty int64) exec.Change {
		return exec.Change{Op: exec.Insert, Vals: []row.Value{row.String(item), row.Int(price), row.Int(qty)}}
	}
	del := func(item string, price, qty int64) exec.Change {
		c := ins(item, price, qty)
		c.Op = exec.Delete
		return c
	}
	env := stream.New(stream.WithParallelism(1))
	in := stream.FromSource(env, "orders", stream.FromSlice([]exec.Change{
		ins("apple", 10, 1), ins("apple", 20, 3), del("apple", 10, 1), ins("pear", 7, 2),
	}, 1), stream.WatermarkStrategy[exec.Change]{})
	out := exec.GroupAggregate(in, []int{0}, []exec.AggCall{
		{Kind: exec.AggUser, Args: []int{1, 2}, Filter: -1, User: weightedAvg{}},
	}, exec.AggConfig{})
	got := stream.Collect(out)
	if err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range got.Values() {
		fmt.Println(c.Op, c.Vals[0], c.Vals[1])
	}
	// Output:
	// +I apple 10
	// -U apple 10
	// +U apple 17
	// -U apple 17
	// +U apple 20
	// +I pear 7
}
