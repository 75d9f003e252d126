package sql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/types"
)

// table is a table of the catalog: a CREATE TABLE.
type table struct {
	name string
	// physical columns as the connector sees them, ROW columns
	// flattened into one column per leaf field.
	physical []connect.Column
	// computed columns, evaluated over the physical ones, appended
	// after them.
	computed []computedColumn
	// cols are the table's columns as queries see them: physical then
	// computed.
	cols []column
	// rowtime is the index in cols of the WATERMARK column, -1 when none;
	// delay is how far the watermark trails it.
	rowtime int
	delay   time.Duration
	// idleTimeout marks a split idle after this long without records
	// ('scan.watermark.idle-timeout'; idleTimeoutSet when the table has
	// it). Otherwise the session's table.exec.source.idle-timeout when
	// the job is built applies (builder.idleTimeout).
	idleTimeout    time.Duration
	idleTimeoutSet bool
	pk             []int
	options        connect.Options
	ddl            *ast.CreateTable
	// changelog: the table's rows arrive as changes (inserts, updates,
	// deletes), so every plan over it is updating (BindChangelogTable).
	changelog bool
}

type computedColumn struct {
	name string
	expr ast.Expr
	c    expr.Compiled
	// deps are the columns (of the table's cols) the expression reads.
	deps []int
}

// view is a CREATE VIEW: planned anew wherever it is used.
type view struct {
	name    string
	columns []string
	query   ast.Query
}

func nameOf(parts []ast.Ident) string {
	// catalog.db.name: only the last part names the object; Sluice has
	// one catalog.
	return parts[len(parts)-1].Name
}

func lookupKey(name string) string { return strings.ToLower(name) }

// createTable checks a CREATE TABLE and builds the catalog entry.
func (s *Session) createTable(ct *ast.CreateTable) (*table, error) {
	t := &table{name: nameOf(ct.Name), rowtime: -1, options: connect.Options{}, ddl: ct}
	for _, o := range ct.Options {
		k := strings.ToLower(o.Key)
		if _, dup := t.options[k]; dup {
			return nil, fmt.Errorf("%s: option '%s' is given twice in table %s", o.Pos, o.Key, t.name)
		}
		t.options[k] = o.Value
	}
	if t.options["connector"] == "" {
		return nil, fmt.Errorf("%s: table %s has no 'connector' option; add WITH ('connector' = '...') naming one of: %s", ct.Pos, t.name, strings.Join(connect.Connectors(), ", "))
	}
	seen := map[string]bool{}
	addCol := func(c column, pos ast.Pos) error {
		k := lookupKey(strings.Join(c.pathOrName(), "."))
		if seen[k] {
			return fmt.Errorf("%s: column '%s' is declared twice in table %s", pos, c.name, t.name)
		}
		seen[k] = true
		t.cols = append(t.cols, c)
		return nil
	}
	var flatten func(prefix []string, name string, typ types.Type, meta string, pos ast.Pos) error
	flatten = func(prefix []string, name string, typ types.Type, meta string, pos ast.Pos) error {
		path := append(append([]string(nil), prefix...), name)
		if typ.Kind == types.Row {
			for _, f := range typ.Fields {
				if err := flatten(path, f.Name, f.Type, "", pos); err != nil {
					return err
				}
			}
			return nil
		}
		cc := connect.Column{Name: name, Type: typ, Metadata: meta}
		if len(path) > 1 {
			cc.Path = path
			cc.Name = strings.Join(path, ".")
		}
		t.physical = append(t.physical, cc)
		return addCol(column{name: name, qual: t.name, path: path, typ: typ}, pos)
	}
	for _, el := range ct.Elements {
		if el.Column == nil {
			continue
		}
		typ, err := types.FromAST(el.Column.Type)
		if err != nil {
			return nil, fmt.Errorf("table %s, column %s: %w", t.name, el.Column.Name.Name, err)
		}
		if err := flatten(nil, el.Column.Name.Name, typ, el.Column.Metadata, el.Column.Name.Pos); err != nil {
			return nil, err
		}
	}
	// Computed columns see the physical columns (and the computed ones
	// declared before them).
	for _, el := range ct.Elements {
		if el.Computed == nil {
			continue
		}
		deps := make([]bool, len(t.cols))
		cols := make([]column, len(t.cols))
		copy(cols, t.cols)
		for i := range cols {
			cols[i].used = &deps[i]
		}
		c, err := s.compiler().Compile(el.Computed.Expr, &scope{cols: cols})
		if err != nil {
			return nil, fmt.Errorf("table %s, computed column %s: %w", t.name, el.Computed.Name.Name, err)
		}
		cc := computedColumn{name: el.Computed.Name.Name, expr: el.Computed.Expr, c: c}
		for i, d := range deps {
			if d {
				cc.deps = append(cc.deps, i)
			}
		}
		t.computed = append(t.computed, cc)
		if err := addCol(column{name: el.Computed.Name.Name, qual: t.name, typ: c.Type}, el.Computed.Name.Pos); err != nil {
			return nil, err
		}
	}
	if wm := ct.Watermark; wm != nil {
		sc := &scope{cols: t.cols}
		i, err := sc.find([]ast.Ident{wm.Column}, wm.Column.Pos)
		if err != nil {
			return nil, fmt.Errorf("table %s, WATERMARK: %w", t.name, err)
		}
		if !t.cols[i].typ.IsTimestamp() {
			return nil, fmt.Errorf("%s: the WATERMARK column %s of table %s is %s; it must be a TIMESTAMP(3) or TIMESTAMP_LTZ(3)", wm.Pos, t.cols[i].name, t.name, t.cols[i].typ)
		}
		d, err := watermarkDelay(wm, t.cols[i])
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.name, err)
		}
		t.rowtime, t.delay = i, d
		t.cols[i].typ.Time = types.RowTime
	}
	if v := t.options["scan.watermark.idle-timeout"]; v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("table %s, 'scan.watermark.idle-timeout': %w", t.name, err)
		}
		t.idleTimeout, t.idleTimeoutSet = d, true
		delete(t.options, "scan.watermark.idle-timeout")
	}
	for _, k := range ct.PrimaryKey {
		sc := &scope{cols: t.cols}
		i, err := sc.find([]ast.Ident{k}, k.Pos)
		if err != nil {
			return nil, fmt.Errorf("table %s, PRIMARY KEY: %w", t.name, err)
		}
		t.pk = append(t.pk, i)
	}
	return t, nil
}

// watermarkDelay reads `WATERMARK FOR c AS c - INTERVAL 'n' unit` (or
// `AS c`): the bounded out-of-orderness strategy, the one the runtime
// has.
func watermarkDelay(wm *ast.Watermark, c column) (time.Duration, error) {
	isCol := func(e ast.Expr) bool {
		r, ok := e.(*ast.ColumnRef)
		return ok && len(r.Parts) == 1 && strings.EqualFold(r.Parts[0].Name, wm.Column.Name)
	}
	if isCol(wm.Expr) {
		return 0, nil
	}
	if b, ok := wm.Expr.(*ast.Binary); ok && b.Op == "-" && isCol(b.L) {
		if iv, ok := b.R.(*ast.IntervalLit); ok {
			d, err := intervalDuration(iv)
			if err != nil {
				return 0, err
			}
			if d < 0 {
				return 0, fmt.Errorf("%s: the watermark delay must not be negative", iv.Pos)
			}
			return d, nil
		}
	}
	return 0, fmt.Errorf("%s: WATERMARK FOR %s AS ... supports `%s - INTERVAL 'n' unit` (bounded out-of-orderness) and `%s`; other watermark expressions are not supported", wm.Pos, c.name, wm.Column.Name, wm.Column.Name)
}

// intervalDuration evaluates a day-time interval literal.
func intervalDuration(iv *ast.IntervalLit) (time.Duration, error) {
	v, err := intervalMillis(iv)
	if err != nil {
		return 0, err
	}
	return time.Duration(v) * time.Millisecond, nil
}

var unitMillis = map[string]int64{
	"MILLISECOND": 1, "SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000,
}

// intervalMillis evaluates a day-time interval literal in milliseconds:
// INTERVAL '4' SECOND, INTERVAL '1.5' SECOND, INTERVAL '1 12' DAY TO HOUR,
// INTERVAL '10:30' MINUTE TO SECOND, INTERVAL '1 02:03:04.5' DAY TO SECOND.
func intervalMillis(iv *ast.IntervalLit) (int64, error) {
	bad := func() (int64, error) {
		return 0, fmt.Errorf("%s: INTERVAL '%s' %s%s is not a valid day-time interval", iv.Pos, iv.Value, iv.Unit, map[bool]string{true: " TO " + iv.ToUnit, false: ""}[iv.ToUnit != ""])
	}
	unit := strings.ToUpper(iv.Unit)
	if _, ok := unitMillis[unit]; !ok {
		return 0, fmt.Errorf("%s: INTERVAL %s is a year-month interval; windows and watermarks need a day-time interval (SECOND, MINUTE, HOUR, DAY)", iv.Pos, unit)
	}
	s := strings.TrimSpace(iv.Value)
	neg := iv.Negative
	if strings.HasPrefix(s, "-") {
		neg, s = !neg, s[1:]
	}
	var ms int64
	if iv.ToUnit == "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 {
			return bad()
		}
		ms = int64(math.Round(f * float64(unitMillis[unit])))
	} else {
		// Fields from unit down to ToUnit, separated by ' ' (after days)
		// and ':' (between hours, minutes, seconds).
		order := []string{"DAY", "HOUR", "MINUTE", "SECOND"}
		from, to := -1, -1
		for i, u := range order {
			if u == unit {
				from = i
			}
			if u == strings.ToUpper(iv.ToUnit) {
				to = i
			}
		}
		if from < 0 || to < 0 || to <= from {
			return bad()
		}
		fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ':' })
		if len(fields) != to-from+1 {
			return bad()
		}
		for i, f := range fields {
			x, err := strconv.ParseFloat(f, 64)
			if err != nil || x < 0 {
				return bad()
			}
			ms += int64(math.Round(x * float64(unitMillis[order[from+i]])))
		}
	}
	if neg {
		ms = -ms
	}
	return ms, nil
}
