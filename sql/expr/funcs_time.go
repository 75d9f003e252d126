package expr

import (
	"strings"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/types"
)

// wallOf returns how to read a value of type t as wall-clock
// milliseconds (a TIMESTAMP as it is; a TIMESTAMP_LTZ in the session
// zone; a DATE at midnight; a string parsed as 'yyyy-MM-dd HH:mm:ss').
// nil means the value's int is already wall-clock milliseconds.
func (c *Compiler) wallOf(t types.Type) (func(row.Value) (int64, bool), bool) {
	switch t.Kind {
	case types.Timestamp:
		return nil, true
	case types.TimestampLTZ:
		loc := c.loc()
		return func(v row.Value) (int64, bool) { return instantToWall(v.AsInt(), loc), true }, true
	case types.Date:
		return func(v row.Value) (int64, bool) { return v.AsInt() * msPerDay, true }, true
	case types.Char, types.Varchar:
		return func(v row.Value) (int64, bool) {
			ms, err := parseTimestamp(v.AsString())
			return ms, err == nil
		}, true
	}
	return nil, false
}

// fieldOf returns the extraction of a unit from wall-clock milliseconds.
func fieldOf(unit string) (func(ms int64) int64, bool) {
	switch unit {
	case "MILLISECOND":
		return func(ms int64) int64 { return floorMod(ms, msPerMinute) }, true
	case "SECOND":
		return func(ms int64) int64 { return floorMod(ms, msPerMinute) / msPerSecond }, true
	case "MINUTE":
		return func(ms int64) int64 { return floorMod(ms, msPerHour) / msPerMinute }, true
	case "HOUR":
		return func(ms int64) int64 { return floorMod(ms, msPerDay) / msPerHour }, true
	case "DAY", "DAYOFMONTH":
		return func(ms int64) int64 { _, _, d := civil(floorDiv(ms, msPerDay)); return int64(d) }, true
	case "MONTH":
		return func(ms int64) int64 { _, m, _ := civil(floorDiv(ms, msPerDay)); return int64(m) }, true
	case "YEAR":
		return func(ms int64) int64 { y, _, _ := civil(floorDiv(ms, msPerDay)); return y }, true
	case "QUARTER":
		return func(ms int64) int64 { _, m, _ := civil(floorDiv(ms, msPerDay)); return int64((m-1)/3 + 1) }, true
	case "WEEK":
		return func(ms int64) int64 { return int64(isoWeek(floorDiv(ms, msPerDay))) }, true
	case "DOY", "DAYOFYEAR":
		return func(ms int64) int64 {
			y, m, d := civil(floorDiv(ms, msPerDay))
			return int64(dayOfYear(y, m, d))
		}, true
	case "DOW", "DAYOFWEEK":
		return func(ms int64) int64 { return int64(weekday(floorDiv(ms, msPerDay))) }, true
	case "ISODOW":
		return func(ms int64) int64 { return (int64(weekday(floorDiv(ms, msPerDay)))+5)%7 + 1 }, true
	case "EPOCH":
		return func(ms int64) int64 { return floorDiv(ms, msPerSecond) }, true
	case "CENTURY":
		return func(ms int64) int64 {
			y, _, _ := civil(floorDiv(ms, msPerDay))
			if y > 0 {
				return (y + 99) / 100
			}
			return -((-y + 99) / 100)
		}, true
	case "DECADE":
		return func(ms int64) int64 { y, _, _ := civil(floorDiv(ms, msPerDay)); return floorDiv(y, 10) }, true
	}
	return nil, false
}

// extract compiles EXTRACT(unit FROM x) and HOUR(x) etc.: BIGINT.
func (c *Compiler) extract(pos ast.Pos, unit string, x Compiled) (Compiled, error) {
	unit = strings.ToUpper(unit)
	get, ok := fieldOf(unit)
	if !ok {
		return Compiled{}, errorf(pos, "unknown time unit %s (use YEAR, QUARTER, MONTH, WEEK, DAY, DOY, DOW, HOUR, MINUTE, SECOND, MILLISECOND or EPOCH)", unit)
	}
	out := Compiled{Type: withNull(types.TBigInt, x), Const: x.Const}
	if x.Type.Kind == types.Null {
		return constant(types.TBigInt, null), nil
	}
	if x.Type.Kind == types.Time {
		f := x.Eval
		out.Eval = map1(f, func(a row.Value) row.Value { return row.Int(get(a.AsInt())) })
		return fold(out), nil
	}
	if x.Type.Kind == types.IntervalDayTime {
		var div, mod int64
		switch unit {
		case "DAY":
			div, mod = msPerDay, 0
		case "HOUR":
			div, mod = msPerHour, 24
		case "MINUTE":
			div, mod = msPerMinute, 60
		case "SECOND":
			div, mod = msPerSecond, 60
		case "MILLISECOND":
			div, mod = 1, 60_000
		default:
			return Compiled{}, errorf(pos, "cannot EXTRACT %s from a day-time INTERVAL", unit)
		}
		out.Eval = map1(x.Eval, func(a row.Value) row.Value {
			v := a.AsInt() / div
			if mod != 0 {
				v %= mod
			}
			return row.Int(v)
		})
		return fold(out), nil
	}
	if x.Type.Kind == types.IntervalYearMonth {
		switch unit {
		case "YEAR":
			out.Eval = map1(x.Eval, func(a row.Value) row.Value { return row.Int(a.AsInt() / 12) })
		case "MONTH":
			out.Eval = map1(x.Eval, func(a row.Value) row.Value { return row.Int(a.AsInt() % 12) })
		default:
			return Compiled{}, errorf(pos, "cannot EXTRACT %s from a year-month INTERVAL", unit)
		}
		return fold(out), nil
	}
	wall, ok := c.wallOf(x.Type)
	if !ok || x.Type.IsString() {
		return Compiled{}, errorf(pos, "cannot extract %s from %s: a TIMESTAMP, DATE or TIME is needed", unit, typeName(x.Type))
	}
	f := x.Eval
	if wall == nil {
		if unit == "HOUR" {
			out.Eval = func(v []row.Value) row.Value {
				a := f(v)
				if a.IsNull() {
					return a
				}
				return row.Int(floorMod(a.AsInt(), msPerDay) / msPerHour)
			}
			return fold(out), nil
		}
		out.Eval = map1(f, func(a row.Value) row.Value { return row.Int(get(a.AsInt())) })
		return fold(out), nil
	}
	out.Eval = map1(f, func(a row.Value) row.Value {
		ms, _ := wall(a)
		return row.Int(get(ms))
	})
	return fold(out), nil
}

// floorTime compiles FLOOR/CEIL(ts TO unit).
func floorTime(b *call, unit string, floor bool) (Compiled, error) {
	x := b.args[0]
	t := x.Type.Plain()
	var step int64
	months := int64(0)
	switch unit {
	case "MILLISECOND":
		step = 1
	case "SECOND":
		step = msPerSecond
	case "MINUTE":
		step = msPerMinute
	case "HOUR":
		step = msPerHour
	case "DAY":
		step = msPerDay
	case "WEEK":
		step = 7 * msPerDay
	case "MONTH":
		months = 1
	case "QUARTER":
		months = 3
	case "YEAR":
		months = 12
	default:
		return Compiled{}, b.errorf("unknown time unit %s (use SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER or YEAR)", unit)
	}
	date := t.Kind == types.Date
	ltz := t.Kind == types.TimestampLTZ
	loc := b.c.loc()
	return b.result(t, map1(x.Eval, func(a row.Value) row.Value {
		ms := a.AsInt()
		if date {
			ms *= msPerDay
		} else if ltz {
			ms = instantToWall(ms, loc)
		}
		var r int64
		if months == 0 {
			off := int64(0)
			if step == 7*msPerDay {
				// Weeks start on Sunday, as in Flink (Calcite's
				// julianDateFloor) and as DAYOFWEEK counts them:
				// 1970-01-04 was a Sunday.
				off = -3 * msPerDay
			}
			r = floorDiv(ms+off, step)*step - off
			if !floor && r != ms {
				r += step
			}
		} else {
			days := floorDiv(ms, msPerDay)
			y, m, _ := civil(days)
			total := y*12 + int64(m-1)
			total = floorDiv(total, months) * months
			r = daysFromCivil(floorDiv(total, 12), int(floorMod(total, 12))+1, 1) * msPerDay
			if !floor && r != ms {
				total += months
				r = daysFromCivil(floorDiv(total, 12), int(floorMod(total, 12))+1, 1) * msPerDay
			}
		}
		if date {
			return row.Int(floorDiv(r, msPerDay))
		}
		if ltz {
			return row.Timestamp(wallToInstant(r, loc))
		}
		return row.Timestamp(r)
	}))
}

func registerTime(r *Registry) {
	for _, unit := range []string{"HOUR", "MINUTE", "SECOND", "YEAR", "MONTH", "DAYOFMONTH", "DAYOFWEEK", "DAYOFYEAR", "QUARTER", "WEEK"} {
		r.det(unit, func(b *call) (Compiled, error) {
			if err := b.argc(1, 1); err != nil {
				return Compiled{}, err
			}
			if err := b.want(0, "a TIMESTAMP, DATE or TIME", func(t types.Type) bool {
				return t.IsTimestamp() || t.Kind == types.Date || t.Kind == types.Time
			}); err != nil {
				return Compiled{}, err
			}
			return b.c.extract(b.pos(), unit, b.args[0])
		})
	}
	r.det("DATE_FORMAT", dateFormatFunc)
	r.det("TO_TIMESTAMP", func(b *call) (Compiled, error) { return parseTimeFunc(b, types.TTimestamp) })
	r.det("TO_DATE", func(b *call) (Compiled, error) { return parseTimeFunc(b, types.TDate) })
	r.add("UNIX_TIMESTAMP", builtin{compile: unixTimestamp}) // UNIX_TIMESTAMP() reads the clock
	r.det("FROM_UNIXTIME", func(b *call) (Compiled, error) {
		if err := b.argc(1, 2); err != nil {
			return Compiled{}, err
		}
		if err := b.wantInteger(0); err != nil {
			return Compiled{}, err
		}
		format, err := b.formatArg(1, "yyyy-MM-dd HH:mm:ss")
		if err != nil {
			return Compiled{}, err
		}
		loc := b.c.loc()
		return b.result(tString, mapN(b.args, func(vals []row.Value) row.Value {
			f, ok := format(vals)
			if !ok {
				return null
			}
			sec := vals[0].AsInt()
			if sec < minMillis/1000 || sec > maxMillis/1000 {
				return b.c.fail(b.pos(), "FROM_UNIXTIME: %d seconds is outside the TIMESTAMP range 0000-01-01 00:00:00 to 9999-12-31 23:59:59", sec)
			}
			return row.String(f.Format(instantToWall(sec*1000, loc)))
		}))
	})
	r.det("TO_TIMESTAMP_LTZ", func(b *call) (Compiled, error) {
		if err := b.argc(1, 2); err != nil {
			return Compiled{}, err
		}
		if err := b.wantNumeric(0); err != nil {
			return Compiled{}, err
		}
		prec := int64(3)
		if len(b.args) == 2 {
			if err := b.wantInteger(1); err != nil {
				return Compiled{}, err
			}
			if !b.args[1].Const {
				return Compiled{}, b.errorf("the precision must be a constant 0 (seconds) or 3 (milliseconds)")
			}
			prec = b.args[1].Eval(nil).AsInt()
		}
		var mul float64
		switch prec {
		case 0:
			mul = 1000
		case 3:
			mul = 1
		default:
			return Compiled{}, b.errorf("the precision must be 0 (seconds) or 3 (milliseconds), not %d", prec)
		}
		t := types.Type{Kind: types.TimestampLTZ, Precision: 3}
		if classOf(b.args[0].Type) == clsInt {
			m := int64(mul)
			return b.result(t, map1(b.args[0].Eval, func(a row.Value) row.Value {
				ms, ok := addSpan(0, a.AsInt(), m)
				if !ok {
					return b.c.fail(b.pos(), "TO_TIMESTAMP_LTZ: %d is outside the TIMESTAMP range 0000-01-01 00:00:00 to 9999-12-31 23:59:59.999", a.AsInt())
				}
				return row.Timestamp(ms)
			}))
		}
		toF := floatOf(b.args[0].Type)
		return b.result(t, map1(b.args[0].Eval, func(a row.Value) row.Value {
			f := toF(a) * mul
			if !(f >= minMillis && f <= maxMillis) { // NaN too
				return b.c.fail(b.pos(), "TO_TIMESTAMP_LTZ: %v is outside the TIMESTAMP range 0000-01-01 00:00:00 to 9999-12-31 23:59:59.999", toF(a))
			}
			return row.Timestamp(int64(f))
		}))
	})
	r.add("TIMESTAMPADD", builtin{compile: timestampAdd, raw: true, deterministic: true})
	r.add("TIMESTAMPDIFF", builtin{compile: timestampDiff, raw: true, deterministic: true})
	now := func(kind types.Kind) func(b *call) (Compiled, error) {
		return func(b *call) (Compiled, error) {
			if err := b.argc(0, 0); err != nil {
				return Compiled{}, err
			}
			return b.c.nowOf(kind), nil
		}
	}
	r.add("CURRENT_TIMESTAMP", builtin{compile: now(types.TimestampLTZ)})
	r.add("NOW", builtin{compile: now(types.TimestampLTZ)})
	r.add("LOCALTIMESTAMP", builtin{compile: now(types.Timestamp)})
	r.add("CURRENT_DATE", builtin{compile: now(types.Date)})
	r.add("CURRENT_TIME", builtin{compile: now(types.Time)})
	r.add("LOCALTIME", builtin{compile: now(types.Time)})
	r.add("PROCTIME", builtin{compile: func(b *call) (Compiled, error) {
		if err := b.argc(0, 0); err != nil {
			return Compiled{}, err
		}
		c := b.c
		return Compiled{Type: types.Type{Kind: types.Timestamp, Precision: 3, NotNull: true, Time: types.ProcTime},
			Eval: func([]row.Value) row.Value { return row.Timestamp(c.now().UnixMilli()) }}, nil
	}})
}

// nowOf is the current time as kind, evaluated per row.
func (c *Compiler) nowOf(kind types.Kind) Compiled {
	loc := c.loc()
	switch kind {
	case types.TimestampLTZ:
		return Compiled{Type: types.Type{Kind: kind, Precision: 3, NotNull: true}, Eval: func([]row.Value) row.Value {
			return row.Timestamp(c.now().UnixMilli())
		}}
	case types.Timestamp:
		return Compiled{Type: types.Type{Kind: kind, Precision: 3, NotNull: true}, Eval: func([]row.Value) row.Value {
			return row.Timestamp(instantToWall(c.now().UnixMilli(), loc))
		}}
	case types.Date:
		return Compiled{Type: types.TDate.WithNull(true), Eval: func([]row.Value) row.Value {
			return row.Int(floorDiv(instantToWall(c.now().UnixMilli(), loc), msPerDay))
		}}
	}
	return Compiled{Type: types.Type{Kind: types.Time, NotNull: true}, Eval: func([]row.Value) row.Value {
		return row.Int(floorMod(instantToWall(c.now().UnixMilli(), loc), msPerDay))
	}}
}

// niladic names the functions SQL writes without parentheses.
var niladic = map[string]types.Kind{
	"CURRENT_TIMESTAMP": types.TimestampLTZ, "LOCALTIMESTAMP": types.Timestamp,
	"CURRENT_DATE": types.Date, "CURRENT_TIME": types.Time, "LOCALTIME": types.Time,
}

// formatArg returns the date format of argument i (default def when
// absent), compiled once when constant.
func (b *call) formatArg(i int, def string) (func(vals []row.Value) (*dateFormat, bool), error) {
	if i >= len(b.args) {
		f, err := compileDateFormat(def)
		if err != nil {
			return nil, err
		}
		return func([]row.Value) (*dateFormat, bool) { return f, true }, nil
	}
	if err := b.wantString(i); err != nil {
		return nil, err
	}
	if p, isNull, ok := b.constString(i); ok && !isNull {
		f, err := compileDateFormat(p)
		if err != nil {
			return nil, errorf(b.node.Args[i].Start(), "%s: %v", b.name, err)
		}
		return func([]row.Value) (*dateFormat, bool) { return f, true }, nil
	}
	cache := newFormatCache()
	return func(vals []row.Value) (*dateFormat, bool) {
		f, err := cache.get(vals[i].AsString())
		if err != nil {
			b.c.fail(b.pos(), "%s: %v", b.name, err)
			return nil, false
		}
		return f, true
	}, nil
}

// dateFormatFunc is DATE_FORMAT(ts, pattern): ts a TIMESTAMP (its
// wall-clock), a TIMESTAMP_LTZ (in the session zone), a DATE or a string
// 'yyyy-MM-dd HH:mm:ss'.
func dateFormatFunc(b *call) (Compiled, error) {
	if err := b.argc(1, 2); err != nil {
		return Compiled{}, err
	}
	wall, ok := b.c.wallOf(b.args[0].Type)
	if !ok && b.args[0].Type.Kind != types.Null {
		return Compiled{}, errorf(b.node.Args[0].Start(), "DATE_FORMAT expects a TIMESTAMP, DATE or string as its first argument, got %s", typeName(b.args[0].Type))
	}
	format, err := b.formatArg(1, "yyyy-MM-dd HH:mm:ss")
	if err != nil {
		return Compiled{}, err
	}
	if p, isNull, ok := b.constString(1); (ok && !isNull || len(b.args) == 1) && wall == nil {
		if len(b.args) == 1 {
			p = "yyyy-MM-dd HH:mm:ss"
		}
		f, _ := compileDateFormat(p)
		x := b.args[0].Eval
		return b.result(tString, func(v []row.Value) row.Value {
			a := x(v)
			if a.IsNull() {
				return a
			}
			var buf [64]byte
			return row.String(string(f.format(buf[:0], a.AsInt())))
		})
	}
	return b.result(tString, mapN(b.args, func(vals []row.Value) row.Value {
		f, ok := format(vals)
		if !ok {
			return null
		}
		ms := vals[0].AsInt()
		if wall != nil {
			if ms, ok = wall(vals[0]); !ok {
				return b.c.fail(b.pos(), "DATE_FORMAT: %q is not a timestamp 'yyyy-MM-dd HH:mm:ss'", vals[0].AsString())
			}
		}
		return row.String(f.Format(ms))
	}))
}

// parseTimeFunc is TO_TIMESTAMP(s[, fmt]) and TO_DATE(s[, fmt]); NULL
// when s does not match (as Flink).
func parseTimeFunc(b *call, t types.Type) (Compiled, error) {
	if err := b.argc(1, 2); err != nil {
		return Compiled{}, err
	}
	if err := b.wantString(0); err != nil {
		return Compiled{}, err
	}
	def := "yyyy-MM-dd HH:mm:ss"
	if t.Kind == types.Date {
		def = "yyyy-MM-dd"
	}
	date := t.Kind == types.Date
	if len(b.args) == 1 {
		return b.result(t, map1(b.args[0].Eval, func(a row.Value) row.Value {
			ms, err := parseTimestamp(a.AsString())
			if err != nil {
				return null
			}
			if date {
				return row.Int(floorDiv(ms, msPerDay))
			}
			return row.Timestamp(ms)
		}))
	}
	format, err := b.formatArg(1, def)
	if err != nil {
		return Compiled{}, err
	}
	return b.result(t, mapN(b.args, func(vals []row.Value) row.Value {
		f, ok := format(vals)
		if !ok {
			return null
		}
		ms, ok := f.parse(vals[0].AsString())
		if !ok {
			return null
		}
		if date {
			return row.Int(floorDiv(ms, msPerDay))
		}
		return row.Timestamp(ms)
	}))
}

// unixTimestamp is UNIX_TIMESTAMP() (now, in seconds) or
// UNIX_TIMESTAMP(s[, fmt]) (s read in the session zone).
func unixTimestamp(b *call) (Compiled, error) {
	if err := b.argc(0, 2); err != nil {
		return Compiled{}, err
	}
	c := b.c
	if len(b.args) == 0 {
		out := Compiled{Type: types.TBigInt.WithNull(true), Eval: func([]row.Value) row.Value {
			return row.Int(floorDiv(c.now().UnixMilli(), 1000))
		}}
		return out, nil
	}
	if err := b.wantString(0); err != nil {
		return Compiled{}, err
	}
	format, err := b.formatArg(1, "yyyy-MM-dd HH:mm:ss")
	if err != nil {
		return Compiled{}, err
	}
	loc := c.loc()
	return b.result(types.TBigInt, mapN(b.args, func(vals []row.Value) row.Value {
		f, ok := format(vals)
		if !ok {
			return null
		}
		ms, ok := f.parse(vals[0].AsString())
		if !ok {
			return null
		}
		return row.Int(floorDiv(wallToInstant(ms, loc), 1000))
	}))
}

// timestampAdd is TIMESTAMPADD(unit, n, ts).
func timestampAdd(b *call) (Compiled, error) {
	if len(b.node.Args) != 3 {
		return Compiled{}, b.errorf("expects 3 arguments (unit, count, timestamp), got %d", len(b.node.Args))
	}
	unit, ok := unitArg(b.node.Args[0])
	if !ok {
		return Compiled{}, b.errorf("the first argument must be a time unit: TIMESTAMPADD(HOUR, 1, ts)")
	}
	if err := b.compileRaw(1); err != nil {
		return Compiled{}, err
	}
	if err := b.wantInteger(1); err != nil {
		return Compiled{}, err
	}
	if err := b.wantTime(2); err != nil {
		return Compiled{}, err
	}
	n, x := b.args[1], b.args[2]
	var ms, months int64
	switch unit {
	case "MILLISECOND":
		ms = 1
	case "SECOND", "MINUTE", "HOUR", "DAY", "WEEK":
		ms = unitMillis[unit]
	case "MONTH":
		months = 1
	case "QUARTER":
		months = 3
	case "YEAR":
		months = 12
	default:
		return Compiled{}, b.errorf("unknown time unit %s", unit)
	}
	t := x.Type.Plain()
	date := t.Kind == types.Date
	out := Compiled{Type: t, Const: n.Const && x.Const, Eval: map2(n.Eval, x.Eval, func(a, v row.Value) row.Value {
		k := a.AsInt()
		base := v.AsInt()
		if months != 0 {
			if k > maxMonths || k < -maxMonths {
				return b.c.fail(b.pos(), "TIMESTAMPADD: %s", errTimeRange)
			}
			r, ok := addMonthsChecked(base, k*months, date)
			if !ok {
				return b.c.fail(b.pos(), "TIMESTAMPADD: %s", errTimeRange)
			}
			if date {
				return row.Int(r)
			}
			return row.Timestamp(r)
		}
		if date {
			if !daysInRange(base) {
				return b.c.fail(b.pos(), "TIMESTAMPADD: %s", errTimeRange)
			}
			r, ok := addSpan(base*msPerDay, k, ms)
			if !ok {
				return b.c.fail(b.pos(), "TIMESTAMPADD: %s", errTimeRange)
			}
			return row.Int(floorDiv(r, msPerDay))
		}
		r, ok := addSpan(base, k, ms)
		if !ok {
			return b.c.fail(b.pos(), "TIMESTAMPADD: %s", errTimeRange)
		}
		return row.Timestamp(r)
	})}
	return out, nil
}

// monthsBetween is the number of whole months from a to b (epoch ms),
// truncated toward zero: the largest m for which the earlier time plus m
// months, its day clamped to the month's end as TIMESTAMPADD does, is not
// after the later one. As in Flink (Calcite's subtractMonths), 2020-01-31
// to 2020-02-29 is one month: adding a month to 2020-01-31 reaches it.
func monthsBetween(a, b int64) int64 {
	sign := int64(1)
	if b < a {
		a, b, sign = b, a, -1
	}
	fa, fb := splitMillis(a), splitMillis(b)
	// The calendar difference is an upper bound: adding it to a lands in
	// b's month, and one month fewer is at or before b.
	m := (fb.year*12 + int64(fb.month)) - (fa.year*12 + int64(fa.month))
	if m > 0 && addMonthsMillis(a, m) > b {
		m--
	}
	return sign * m
}

// timestampDiff is TIMESTAMPDIFF(unit, a, b): whole units from a to b.
func timestampDiff(b *call) (Compiled, error) {
	if len(b.node.Args) != 3 {
		return Compiled{}, b.errorf("expects 3 arguments (unit, from, to), got %d", len(b.node.Args))
	}
	unit, ok := unitArg(b.node.Args[0])
	if !ok {
		return Compiled{}, b.errorf("the first argument must be a time unit: TIMESTAMPDIFF(SECOND, a, b)")
	}
	if err := b.compileRaw(1); err != nil {
		return Compiled{}, err
	}
	for i := 1; i < 3; i++ {
		if err := b.wantTime(i); err != nil {
			return Compiled{}, err
		}
	}
	toMs := func(t types.Type) func(row.Value) int64 {
		if t.Kind == types.Date {
			return func(v row.Value) int64 { return v.AsInt() * msPerDay }
		}
		return row.Value.AsInt
	}
	fa, fb := toMs(b.args[1].Type), toMs(b.args[2].Type)
	var step, months int64
	switch unit {
	case "MILLISECOND":
		step = 1
	case "SECOND", "MINUTE", "HOUR", "DAY", "WEEK":
		step = unitMillis[unit]
	case "MONTH":
		months = 1
	case "QUARTER":
		months = 3
	case "YEAR":
		months = 12
	default:
		return Compiled{}, b.errorf("unknown time unit %s", unit)
	}
	return Compiled{Type: types.TInt, Const: b.args[1].Const && b.args[2].Const, Eval: map2(b.args[1].Eval, b.args[2].Eval, func(x, y row.Value) row.Value {
		a, c := fa(x), fb(y)
		if !inRange(a) || !inRange(c) {
			return b.c.fail(b.pos(), "TIMESTAMPDIFF: a time outside the TIMESTAMP range 0000-01-01 00:00:00 to 9999-12-31 23:59:59.999")
		}
		if months == 0 {
			d := (c - a) / step
			if d != int64(int32(d)) {
				return b.c.fail(b.pos(), "TIMESTAMPDIFF: the difference, %d in unit %s, does not fit its INT result; use a larger unit", d, unit)
			}
			return row.Int(d)
		}
		return row.Int(monthsBetween(a, c) / months)
	})}, nil
}
