package sql

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

func nullEval([]row.Value) row.Value { return row.Null() }

// Column describes a column of a query result.
type Column struct {
	Name string
	Type types.Type
}

// Query plans and runs a query, calling emit for every change of its
// result (from several goroutines, one at a time) until its sources end
// or ctx is cancelled. cols is called once before the job starts.
func (s *Session) Query(ctx context.Context, q ast.Query, cols func([]Column, bool), emit func(exec.Change)) error {
	var n node
	err := s.planPruned(func(p *planner) error {
		var err error
		if n, err = p.planQuery(q); err != nil {
			return err
		}
		return p.finish(q.Start())
	})
	if err != nil {
		return err
	}
	pruneRowNumbers(n)
	cs := n.cols()
	out := make([]Column, len(cs))
	for i, c := range cs {
		out[i] = Column{Name: c.name, Type: c.typ}
	}
	if cols != nil {
		cols(out, n.updating())
	}
	info := &jobInfo{}
	opts, err := s.jobOptions(info)
	if err != nil {
		return err
	}
	env := stream.New(opts...)
	b := s.newBuilder(ctx, env)
	defer b.closeAll()
	st, err := b.build(n)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	stream.To(st, stream.SinkFunc[exec.Change](func(_ context.Context, recs []exec.Change) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			emit(r)
		}
		return nil
	}), stream.Name("print"))
	name := s.settings["pipeline.name"]
	if name == "" {
		name = "select"
	}
	info.name, info.plan = name, s.explainNodes([]node{n})
	return env.Execute(ctx)
}

// runQuery prints a query's result in the session's format.
func (s *Session) runQuery(ctx context.Context, q ast.Query) error {
	pr := &printer{w: s.opts.Out, json: s.opts.Format == "json"}
	err := s.Query(ctx, q, pr.header, pr.row)
	pr.footer()
	return err
}

// printer writes results: a table ("tableau") with an op column when the
// result updates, or JSON lines.
type printer struct {
	w        io.Writer
	json     bool
	cols     []Column
	ccols    []connect.Column
	updating bool
	widths   []int
	n        int
	buf      []byte
}

func (p *printer) header(cols []Column, updating bool) {
	p.cols, p.updating = cols, updating
	for _, c := range cols {
		p.ccols = append(p.ccols, connect.Column{Name: c.Name, Type: c.Type})
	}
	if p.json {
		return
	}
	if updating {
		p.widths = append(p.widths, 2)
	}
	for _, c := range cols {
		p.widths = append(p.widths, max(utf8.RuneCountInString(c.Name), typeWidth(c.Type)))
	}
	p.rule()
	var cells []string
	if updating {
		cells = append(cells, "op")
	}
	for _, c := range cols {
		cells = append(cells, c.Name)
	}
	p.line(cells)
	p.rule()
}

func typeWidth(t types.Type) int {
	switch t.Kind {
	case types.Boolean:
		return 5
	case types.TinyInt, types.SmallInt, types.Int:
		return 11
	case types.BigInt:
		return 20
	case types.Float, types.Double:
		return 12
	case types.Decimal:
		return min(t.Precision+2, 24)
	case types.Timestamp, types.TimestampLTZ:
		return 23
	case types.Date:
		return 10
	}
	return 25
}

func (p *printer) rule() {
	var b strings.Builder
	for _, w := range p.widths {
		b.WriteString("+")
		b.WriteString(strings.Repeat("-", w+2))
	}
	b.WriteString("+\n")
	io.WriteString(p.w, b.String())
}

func (p *printer) line(cells []string) {
	var b strings.Builder
	for i, c := range cells {
		w := p.widths[i]
		if utf8.RuneCountInString(c) > w {
			r := []rune(c)
			c = string(r[:w-3]) + "..."
		}
		b.WriteString("| ")
		if i > 0 || !p.updating {
			// Numbers right-aligned, the rest left-aligned, as SQL
			// clients do.
			k := i
			if p.updating {
				k--
			}
			if p.cols[k].Type.IsNumeric() {
				b.WriteString(strings.Repeat(" ", w-utf8.RuneCountInString(c)))
				b.WriteString(c)
				b.WriteString(" ")
				continue
			}
		}
		b.WriteString(c)
		b.WriteString(strings.Repeat(" ", w-utf8.RuneCountInString(c)+1))
	}
	b.WriteString("|\n")
	io.WriteString(p.w, b.String())
}

func (p *printer) row(c exec.Change) {
	p.n++
	if p.json {
		b := p.buf[:0]
		if p.updating {
			b = append(b, `{"op":"`...)
			b = append(b, c.Op.String()...)
			b = append(b, `",`...)
			enc := connect.AppendJSON(nil, p.ccols, c.Vals, connect.JSONOptions{})
			b = append(b, enc[1:]...)
		} else {
			b = connect.AppendJSON(b, p.ccols, c.Vals, connect.JSONOptions{})
		}
		b = append(b, '\n')
		p.buf = b
		p.w.Write(b)
		return
	}
	var cells []string
	if p.updating {
		cells = append(cells, c.Op.String())
	}
	for i, v := range c.Vals {
		cells = append(cells, formatValue(v, p.cols[i].Type))
	}
	p.line(cells)
}

func (p *printer) footer() {
	if p.json || p.cols == nil {
		return
	}
	p.rule()
	fmt.Fprintf(p.w, "%d row%s in result\n", p.n, map[bool]string{true: "", false: "s"}[p.n == 1])
}

// formatValue renders a value for the table: NULL as <NULL>, timestamps
// as yyyy-MM-dd HH:mm:ss.SSS, decimals with their scale.
func formatValue(v row.Value, t types.Type) string {
	if v.IsNull() {
		return "<NULL>"
	}
	enc := connect.AppendJSON(nil, []connect.Column{{Name: "v", Type: t}}, []row.Value{v}, connect.JSONOptions{})
	s := string(enc[len(`{"v":`) : len(enc)-1])
	switch {
	case t.IsTimestamp():
		return connect.FormatTimestamp(v.AsInt())
	case t.IsString():
		return v.AsString()
	}
	return s
}
