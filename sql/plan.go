package sql

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/types"
)

// column is one column of a plan node's output.
type column struct {
	name string
	// qual is the table alias that qualifies the column in the scope of
	// a FROM clause ("" when none).
	qual string
	// path is the column's name as nested parts: a flattened ROW field
	// of a table is ["person", "id"]; other columns are [name].
	path []string
	typ  types.Type
	// win marks the window_start, window_end and window_time columns of
	// a window aggregation's output (and their renamings), which a
	// later GROUP BY or join on them turns into a cascaded window
	// aggregation or a window join.
	win winRole
	// tvf marks the window columns added by a windowing TVF, not yet
	// aggregated.
	tvf *windowTVF
	// hidden columns are not expanded by `*` (none yet besides window
	// columns of legacy group windows).
	hidden bool
	// used, on a scan's columns while the planner collects column use
	// (projection pushdown), is set when a name resolves to the column.
	used *bool
}

type winRole uint8

const (
	winNone winRole = iota
	winStart
	winEnd
	winTime
)

func (c column) pathOrName() []string {
	if len(c.path) > 0 {
		return c.path
	}
	return []string{c.name}
}

// node is a node of a logical plan. Its rows flow as exec.Change values
// whose Vals follow cols(); the stream record timestamp is the event time
// of the row when the node has a rowtime column (and otherwise whatever
// the source gave it).
type node interface {
	cols() []column
	// updating reports a result with updates or deletions (-U/+U/-D).
	updating() bool
	inputs() []node
	// describe is the node's one-line description for EXPLAIN.
	describe() string
}

// scan reads a table.
type scan struct {
	table *table
	out   []column
}

// calc is a projection with an optional filter: Flink's Calc. exprs[i]
// computes output column i; pass[i] >= 0 when column i is input column
// pass[i] unchanged (no evaluation).
type calc struct {
	in     node
	out    []column
	exprs  []expr.Compiled
	pass   []int
	filter func([]row.Value) bool
	// texts of the expressions and filter, for EXPLAIN.
	exprText   []string
	filterText string
}

// windowTVF is TUMBLE/HOP/CUMULATE/SESSION as a table: the input's
// columns and window_start, window_end, window_time. It exists in the
// plan only until an aggregation or a join consumes it, or as a
// flat-map when its rows are selected as they are.
type windowTVF struct {
	in      node
	out     []column
	spec    exec.WindowSpec
	timeCol int
	// partition columns of SESSION (PARTITION BY), nil otherwise.
	partition []int
}

// windowAgg is a window aggregation: keys, then window_start,
// window_end, window_time, then the aggregates.
type windowAgg struct {
	in   node
	out  []column
	key  []int
	spec exec.WindowSpec
	aggs []exec.AggCall
	text []string
	// stamp is the input column of the time attribute when the input is
	// updating: each row's record is stamped with it, so that a
	// retraction reaches the windows its insertion did. -1 otherwise.
	stamp int
}

// groupAgg is an unbounded GROUP BY: keys then aggregates, updating.
type groupAgg struct {
	in   node
	out  []column
	key  []int
	aggs []exec.AggCall
	text []string
}

type joinStrategy uint8

const (
	joinRegular joinStrategy = iota
	joinInterval
	joinWindow
)

// join joins two inputs; its columns are the left's then the right's.
type join struct {
	left, right       node
	out               []column
	kind              exec.JoinKind
	leftKey, rightKey []int
	cond              func(l, r []row.Value) bool
	// pred is the condition on the joined row (left ++ right), which
	// the operator evaluates on a scratch row; cond wraps it.
	pred                func([]row.Value) bool
	condText            string
	strategy            joinStrategy
	lower, upper        time.Duration
	leftWin, rightWin   [2]int
	leftWidth, rightWid int
}

// rank is ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...) filtered to
// the first limit rows.
type rank struct {
	in        node
	out       []column
	partition []int
	order     []exec.SortKey
	limit     int64
	rowNumber bool
	text      string
}

// union is UNION ALL.
type union struct {
	ins []node
	out []column
}

// values is VALUES or SELECT without FROM.
type values struct {
	out  []column
	rows [][]row.Value
}

// sinkNode writes a query into a table.
type sinkNode struct {
	in    node
	table *table
	cols  []connect.Column
}

func (n *scan) cols() []column      { return n.out }
func (n *calc) cols() []column      { return n.out }
func (n *windowTVF) cols() []column { return n.out }
func (n *windowAgg) cols() []column { return n.out }
func (n *groupAgg) cols() []column  { return n.out }
func (n *join) cols() []column      { return n.out }
func (n *rank) cols() []column      { return n.out }
func (n *union) cols() []column     { return n.out }
func (n *values) cols() []column    { return n.out }

func (n *scan) updating() bool      { return n.table.changelog }
func (n *calc) updating() bool      { return n.in.updating() }
func (n *windowTVF) updating() bool { return n.in.updating() }
func (n *windowAgg) updating() bool { return false }
func (n *groupAgg) updating() bool  { return true }
func (n *join) updating() bool {
	if n.strategy != joinRegular {
		return false
	}
	return n.left.updating() || n.right.updating() || (n.kind != exec.JoinInner && n.kind != exec.JoinSemi)
}
func (n *rank) updating() bool {
	switch n.mode() {
	case rankWindow, rankKeepFirstRowtime:
		return false
	}
	return true
}

type rankMode uint8

const (
	rankGeneral rankMode = iota
	// rankDedup keeps the first or last row per partition by a time
	// attribute (ROW_NUMBER ... ORDER BY time ASC|DESC, rownum = 1).
	rankDedup
	// rankKeepFirstRowtime is deduplication keeping the first row by
	// event time: each partition's row is emitted once the watermark
	// passes it, so the result is append-only.
	rankKeepFirstRowtime
	// rankWindow is a top-N per window of a windowed append-only input
	// (partitioned by window_start and window_end): emitted when the
	// window ends, append-only.
	rankWindow
)

func (n *rank) mode() rankMode {
	if n.in.updating() {
		return rankGeneral
	}
	cs := n.in.cols()
	if n.limit == 1 && len(n.order) == 1 && cs[n.order[0].Col].typ.Time != types.NoTimeAttr {
		if !n.order[0].Desc && cs[n.order[0].Col].typ.Time == types.RowTime {
			return rankKeepFirstRowtime
		}
		return rankDedup
	}
	if _, ok := n.windowCols(); ok {
		return rankWindow
	}
	return rankGeneral
}

// windowCols finds window_start and window_end of a window aggregation
// among the partition columns: the partition without them, and the two
// columns.
func (n *rank) windowCols() ([3][]int, bool) {
	cs := n.in.cols()
	ws, we := -1, -1
	var rest []int
	for _, p := range n.partition {
		switch cs[p].win {
		case winStart:
			ws = p
		case winEnd:
			we = p
		default:
			rest = append(rest, p)
		}
	}
	if ws < 0 || we < 0 {
		return [3][]int{}, false
	}
	return [3][]int{rest, {ws}, {we}}, true
}
func (n *union) updating() bool {
	for _, in := range n.ins {
		if in.updating() {
			return true
		}
	}
	return false
}
func (n *values) updating() bool { return false }

func (n *scan) inputs() []node      { return nil }
func (n *calc) inputs() []node      { return []node{n.in} }
func (n *windowTVF) inputs() []node { return []node{n.in} }
func (n *windowAgg) inputs() []node { return []node{n.in} }
func (n *groupAgg) inputs() []node  { return []node{n.in} }
func (n *join) inputs() []node      { return []node{n.left, n.right} }
func (n *rank) inputs() []node      { return []node{n.in} }
func (n *union) inputs() []node     { return n.ins }
func (n *values) inputs() []node    { return nil }

func colNames(cs []column) string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(displayName(c))
	}
	return b.String()
}

// displayName is a column's name for EXPLAIN: the dotted path of a
// flattened ROW field, and readable names for the planner's internal
// columns (aggregate results, window bounds, group keys, row numbers).
func displayName(c column) string {
	if len(c.path) > 1 {
		return strings.Join(c.path, ".")
	}
	return displayText(c.name)
}

// displayText replaces the internal column names in s.
func displayText(s string) string {
	if !strings.Contains(s, "\x00") {
		return s
	}
	r := strings.NewReplacer("\x00ws", "window_start", "\x00we", "window_end", "\x00wt", "window_time",
		"\x00rownum", "row_number", "\x00a", "agg$", "\x00g", "group$", "\x00", "$")
	return r.Replace(s)
}

func (n *scan) describe() string {
	return fmt.Sprintf("TableSourceScan(table=[%s], connector=[%s], fields=[%s])", n.table.name, n.table.options["connector"], colNames(n.out))
}

func (n *calc) describe() string {
	var b strings.Builder
	b.WriteString("Calc(select=[")
	for i, c := range n.out {
		if i > 0 {
			b.WriteString(", ")
		}
		if n.exprText[i] != c.name {
			fmt.Fprintf(&b, "%s AS %s", n.exprText[i], displayName(c))
		} else {
			b.WriteString(displayName(c))
		}
	}
	b.WriteString("]")
	if n.filterText != "" {
		fmt.Fprintf(&b, ", where=[%s]", n.filterText)
	}
	b.WriteString(")")
	return b.String()
}

func (n *windowTVF) describe() string {
	return fmt.Sprintf("WindowTableFunction(window=[%s], time_col=[%s])", describeWindow(n.spec), n.in.cols()[n.timeCol].name)
}

func describeWindow(w exec.WindowSpec) string {
	var s string
	switch w.Kind {
	case exec.Tumble:
		s = fmt.Sprintf("TUMBLE(size=[%s])", w.Size)
	case exec.Hop:
		s = fmt.Sprintf("HOP(slide=[%s], size=[%s])", w.Slide, w.Size)
	case exec.Cumulate:
		s = fmt.Sprintf("CUMULATE(step=[%s], max_size=[%s])", w.Step, w.Size)
	case exec.Session:
		s = fmt.Sprintf("SESSION(gap=[%s])", w.Gap)
	}
	if w.ProcTime {
		s += " on processing time"
	}
	return s
}

func (n *windowAgg) describe() string {
	return fmt.Sprintf("WindowAggregate(groupBy=[%s], window=[%s], select=[%s])", keyNames(n.in, n.key), describeWindow(n.spec), strings.Join(n.text, ", "))
}

func (n *groupAgg) describe() string {
	return fmt.Sprintf("GroupAggregate(groupBy=[%s], select=[%s])", keyNames(n.in, n.key), strings.Join(n.text, ", "))
}

func keyNames(in node, key []int) string {
	cs := in.cols()
	var b strings.Builder
	for i, k := range key {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(displayName(cs[k]))
	}
	return b.String()
}

func (n *join) describe() string {
	kind := map[exec.JoinKind]string{exec.JoinInner: "InnerJoin", exec.JoinLeft: "LeftOuterJoin", exec.JoinRight: "RightOuterJoin",
		exec.JoinFull: "FullOuterJoin", exec.JoinSemi: "LeftSemiJoin", exec.JoinAnti: "LeftAntiJoin"}[n.kind]
	op := "Join"
	switch n.strategy {
	case joinInterval:
		op = fmt.Sprintf("IntervalJoin(between=[%s, %s])", n.lower, n.upper)
	case joinWindow:
		op = "WindowJoin"
	}
	var eq []string
	for i := range n.leftKey {
		eq = append(eq, fmt.Sprintf("%s = %s", n.left.cols()[n.leftKey[i]].name, n.right.cols()[n.rightKey[i]].name))
	}
	where := strings.Join(eq, " AND ")
	if n.condText != "" {
		if where != "" {
			where += " AND "
		}
		where += n.condText
	}
	return fmt.Sprintf("%s(joinType=[%s], where=[%s])", op, kind, where)
}

func (n *rank) describe() string {
	op := map[rankMode]string{rankGeneral: "Rank", rankDedup: "Deduplicate", rankKeepFirstRowtime: "Deduplicate", rankWindow: "WindowRank"}[n.mode()]
	return fmt.Sprintf("%s(%s, rankRange=[1..%d], rowNumber=[%v])", op, n.text, n.limit, n.rowNumber)
}

func (n *union) describe() string {
	return fmt.Sprintf("Union(all=[true], fields=[%s])", colNames(n.out))
}
func (n *values) describe() string {
	return fmt.Sprintf("Values(rows=[%d], fields=[%s])", len(n.rows), colNames(n.out))
}

// explainTree prints the plan under n, one node per line, inputs
// indented below their consumer, with the changelog mode of each node.
func explainTree(b *strings.Builder, n node, depth int) {
	mode := "append"
	if n.updating() {
		mode = "updating"
	}
	fmt.Fprintf(b, "%s%s [%s]\n", strings.Repeat("  ", depth), displayText(n.describe()), mode)
	for _, in := range n.inputs() {
		explainTree(b, in, depth+1)
	}
}
