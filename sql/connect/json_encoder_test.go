package connect

import (
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
)

// TestJSONEncoderMatchesAppendChangeJSON: the encoder writes what
// AppendChangeJSON writes, for flat and nested columns, with and
// without the op member, for short rows and every operation.
func TestJSONEncoderMatchesAppendChangeJSON(t *testing.T) {
	flat := []Column{
		col("d2", types.DecimalOf(10, 2)), col("day", types.TDate), col("ts", types.TTimestamp), col("f", types.TDouble),
		col("b", types.TBoolean), col("s\"q", types.TVarchar), col("n", types.TInt), {Name: "renamed", Type: types.TInt, Path: []string{"x"}},
	}
	fv := []row.Value{row.Int(-5), row.Int(16631), row.Timestamp(1436918400123), row.Float(0.1), row.Bool(true), row.String("a\"b\n"), {}, row.Int(7)}
	nested := []Column{col("a", types.TInt), {Name: "p.x", Type: types.TInt, Path: []string{"p", "x"}}, {Name: "p.y", Type: types.TVarchar, Path: []string{"p", "y"}}}
	nv := []row.Value{row.Int(1), row.Int(2), row.String("y")}
	for _, tc := range []struct {
		cols []Column
		vals []row.Value
	}{{flat, fv}, {flat, fv[:3]}, {nested, nv}, {nested, nv[:1]}, {nil, nil}} {
		for _, o := range []JSONOptions{{}, {Op: true}, {Timestamps: ISOTimestamp, Op: true}} {
			e := NewJSONEncoder(tc.cols, o)
			for _, op := range []exec.Op{exec.Insert, exec.UpdateBefore, exec.UpdateAfter, exec.Delete} {
				c := exec.Change{Op: op, Vals: tc.vals}
				got, want := e.Append([]byte("prefix"), c), AppendChangeJSON([]byte("prefix"), tc.cols, c, o)
				if string(got) != string(want) {
					t.Fatalf("options %+v op %s:\n got %s\nwant %s", o, op, got, want)
				}
			}
		}
	}
}
