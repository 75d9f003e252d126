package types

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/ast"
)

// Kind is the root of a SQL type.
type Kind uint8

// The kinds. Null is the type of the NULL literal before it is given a
// type by its context.
const (
	Null Kind = iota
	Boolean
	TinyInt
	SmallInt
	Int
	BigInt
	Float
	Double
	Decimal
	Char
	Varchar
	Date
	Time
	Timestamp
	TimestampLTZ
	IntervalDayTime
	IntervalYearMonth
	Row
	Array
	Map
)

var kindNames = [...]string{
	Null: "NULL", Boolean: "BOOLEAN", TinyInt: "TINYINT", SmallInt: "SMALLINT", Int: "INT",
	BigInt: "BIGINT", Float: "FLOAT", Double: "DOUBLE", Decimal: "DECIMAL", Char: "CHAR",
	Varchar: "VARCHAR", Date: "DATE", Time: "TIME", Timestamp: "TIMESTAMP",
	TimestampLTZ: "TIMESTAMP_LTZ", IntervalDayTime: "INTERVAL SECOND",
	IntervalYearMonth: "INTERVAL MONTH", Row: "ROW", Array: "ARRAY", Map: "MAP",
}

// String returns the kind's SQL name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "KIND(" + strconv.Itoa(int(k)) + ")"
}

// TimeAttr says whether a TIMESTAMP column is a time attribute: the
// event-time column of a table with a WATERMARK (and what windows and
// interval joins derive from it), or PROCTIME().
type TimeAttr uint8

// The time attributes.
const (
	NoTimeAttr TimeAttr = iota
	RowTime
	ProcTime
)

// Field is a field of a ROW type.
type Field struct {
	Name string
	Type Type
}

// Type is a SQL type. The zero Type is the nullable NULL type.
type Type struct {
	Kind Kind
	// Precision: DECIMAL's digits, TIMESTAMP's and TIME's fraction
	// digits. Length: CHAR's and VARCHAR's declared length (0 = unbounded).
	Precision, Scale, Length int
	Fields                   []Field // ROW
	Elem                     *Type   // ARRAY; MAP's value (key in Key)
	Key                      *Type   // MAP's key
	NotNull                  bool
	Time                     TimeAttr
}

// Common types.
var (
	TBoolean   = Type{Kind: Boolean}
	TInt       = Type{Kind: Int}
	TBigInt    = Type{Kind: BigInt}
	TDouble    = Type{Kind: Double}
	TVarchar   = Type{Kind: Varchar}
	TTimestamp = Type{Kind: Timestamp, Precision: 3}
	TDate      = Type{Kind: Date}
	TInterval  = Type{Kind: IntervalDayTime}
	TNull      = Type{Kind: Null}
)

// DecimalOf returns DECIMAL(p, s).
func DecimalOf(p, s int) Type { return Type{Kind: Decimal, Precision: p, Scale: s} }

// MaxDecimalPrecision is the largest DECIMAL precision whose unscaled
// values always fit the int64 storage. Wider declarations (Flink's
// DECIMAL(23, 3)) are accepted; a value that does not fit is an overflow
// error at run time.
const MaxDecimalPrecision = 18

// WithNull returns t nullable (notNull false) or NOT NULL (true).
func (t Type) WithNull(notNull bool) Type { t.NotNull = notNull; return t }

// Plain returns t without its time attribute (a rowtime column that went
// through an expression is an ordinary TIMESTAMP).
func (t Type) Plain() Type { t.Time = NoTimeAttr; return t }

// IsNumeric reports an exact or approximate numeric type.
func (t Type) IsNumeric() bool {
	switch t.Kind {
	case TinyInt, SmallInt, Int, BigInt, Float, Double, Decimal:
		return true
	}
	return false
}

// IsInteger reports TINYINT, SMALLINT, INT or BIGINT.
func (t Type) IsInteger() bool {
	switch t.Kind {
	case TinyInt, SmallInt, Int, BigInt:
		return true
	}
	return false
}

// IsString reports CHAR or VARCHAR.
func (t Type) IsString() bool { return t.Kind == Char || t.Kind == Varchar }

// IsTimestamp reports TIMESTAMP or TIMESTAMP_LTZ.
func (t Type) IsTimestamp() bool { return t.Kind == Timestamp || t.Kind == TimestampLTZ }

// Storage returns the row.Kind that holds values of t (see the package
// documentation).
func (t Type) Storage() row.Kind {
	switch t.Kind {
	case Boolean:
		return row.KindBool
	case TinyInt, SmallInt, Int, BigInt, Decimal, Date, Time, IntervalDayTime, IntervalYearMonth:
		return row.KindInt
	case Float, Double:
		return row.KindFloat
	case Char, Varchar:
		return row.KindString
	case Timestamp, TimestampLTZ:
		return row.KindTimestamp
	case Row, Array, Map:
		return row.KindJSON
	}
	return row.KindNull
}

// String returns the type as SQL writes it: BIGINT, DECIMAL(23, 3),
// TIMESTAMP(3) *ROWTIME*, ROW<`a` INT, `b` VARCHAR> NOT NULL.
func (t Type) String() string {
	var b strings.Builder
	switch t.Kind {
	case Decimal:
		fmt.Fprintf(&b, "DECIMAL(%d, %d)", t.Precision, t.Scale)
	case Char, Varchar:
		if t.Length > 0 {
			fmt.Fprintf(&b, "%s(%d)", t.Kind, t.Length)
		} else if t.Kind == Varchar {
			b.WriteString("STRING")
		} else {
			b.WriteString("CHAR")
		}
	case Timestamp, TimestampLTZ, Time:
		fmt.Fprintf(&b, "%s(%d)", t.Kind, t.Precision)
	case Row:
		b.WriteString("ROW<")
		for i, f := range t.Fields {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "`%s` %s", f.Name, f.Type)
		}
		b.WriteString(">")
	case Array:
		fmt.Fprintf(&b, "ARRAY<%s>", t.Elem)
	case Map:
		fmt.Fprintf(&b, "MAP<%s, %s>", t.Key, t.Elem)
	default:
		b.WriteString(t.Kind.String())
	}
	if t.NotNull {
		b.WriteString(" NOT NULL")
	}
	switch t.Time {
	case RowTime:
		b.WriteString(" *ROWTIME*")
	case ProcTime:
		b.WriteString(" *PROCTIME*")
	}
	return b.String()
}

// Equal reports whether a and b are the same type, nullability and time
// attribute ignored.
func Equal(a, b Type) bool {
	if a.Kind != b.Kind || a.Precision != b.Precision || a.Scale != b.Scale || len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Fields {
		if !strings.EqualFold(a.Fields[i].Name, b.Fields[i].Name) || !Equal(a.Fields[i].Type, b.Fields[i].Type) {
			return false
		}
	}
	if (a.Elem == nil) != (b.Elem == nil) || a.Elem != nil && !Equal(*a.Elem, *b.Elem) {
		return false
	}
	return true
}

// FromAST converts a written type.
func FromAST(n *ast.TypeName) (Type, error) {
	t, err := fromAST(n)
	if err != nil {
		return Type{}, fmt.Errorf("%s: %w", n.Pos, err)
	}
	t.NotNull = n.NotNull
	return t, nil
}

func fromAST(n *ast.TypeName) (Type, error) {
	param := func(i, def int) int {
		if i < len(n.Params) {
			return n.Params[i]
		}
		return def
	}
	switch strings.ToUpper(n.Name) {
	case "BOOLEAN", "BOOL":
		return TBoolean, nil
	case "TINYINT":
		return Type{Kind: TinyInt}, nil
	case "SMALLINT":
		return Type{Kind: SmallInt}, nil
	case "INT", "INTEGER":
		return TInt, nil
	case "BIGINT":
		return TBigInt, nil
	case "FLOAT", "REAL":
		return Type{Kind: Float}, nil
	case "DOUBLE", "DOUBLE PRECISION":
		return TDouble, nil
	case "DECIMAL", "DEC", "NUMERIC":
		p, s := param(0, 10), param(1, 0)
		if p < 1 || p > 38 || s < 0 || s > p {
			return Type{}, fmt.Errorf("DECIMAL(%d, %d): precision must be 1 to 38 and scale 0 to the precision", p, s)
		}
		return DecimalOf(p, s), nil
	case "CHAR", "CHARACTER":
		return Type{Kind: Char, Length: param(0, 1)}, nil
	case "VARCHAR", "CHARACTER VARYING":
		return Type{Kind: Varchar, Length: param(0, 0)}, nil
	case "STRING", "TEXT":
		return TVarchar, nil
	case "DATE":
		return TDate, nil
	case "TIME":
		return Type{Kind: Time, Precision: param(0, 0)}, nil
	case "TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE":
		return Type{Kind: Timestamp, Precision: param(0, 6)}, nil
	case "TIMESTAMP_LTZ", "TIMESTAMP WITH LOCAL TIME ZONE":
		return Type{Kind: TimestampLTZ, Precision: param(0, 6)}, nil
	case "ROW":
		fs := make([]Field, len(n.Fields))
		for i, f := range n.Fields {
			ft, err := FromAST(f.Type)
			if err != nil {
				return Type{}, err
			}
			fs[i] = Field{Name: f.Name.Name, Type: ft}
		}
		return Type{Kind: Row, Fields: fs}, nil
	case "ARRAY":
		if n.Elem == nil {
			return Type{}, fmt.Errorf("ARRAY needs an element type: ARRAY<INT>")
		}
		e, err := FromAST(n.Elem)
		if err != nil {
			return Type{}, err
		}
		return Type{Kind: Array, Elem: &e}, nil
	}
	return Type{}, fmt.Errorf("unknown type %s (known: BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, DECIMAL(p, s), CHAR(n), VARCHAR(n), STRING, DATE, TIME, TIMESTAMP(p), TIMESTAMP_LTZ(p), ROW<...>, ARRAY<...>)", n.Name)
}
