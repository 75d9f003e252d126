package lookup

import (
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluicehq/sluice/row"
)

func TestBatchQuery(t *testing.T) {
	for _, c := range []struct {
		in, want string
	}{
		{"SELECT name, tier FROM users WHERE id = $1", "SELECT id, name, tier FROM users WHERE id = ANY($1)"},
		{"select u.name from users u join tiers t on t.id = u.tier where u.id=$1 and t.active", "SELECT u.id, u.name FROM users u join tiers t on t.id = u.tier where u.id = ANY($1) and t.active"},
		{"SELECT name FROM users WHERE id = $1 ORDER BY name;", "SELECT id, name FROM users WHERE id = ANY($1) ORDER BY name"},
		{"SELECT name FROM users WHERE note = '$1' AND id = $1", "SELECT id, name FROM users WHERE note = '$1' AND id = ANY($1)"},
		// Shapes that are not one query per key once rewritten.
		{`SELECT "name"::text FROM "public"."users" WHERE "Id" = $1`, `SELECT "Id", "name"::text FROM "public"."users" WHERE "Id" = ANY($1)`},
		{"SELECT name FROM users WHERE id = $1 LIMIT 1", ""},
		{"SELECT DISTINCT name FROM users WHERE id = $1", ""},
		{"SELECT name FROM users WHERE id = $1 OR vip", ""},
		{"SELECT count(*) AS n FROM orders WHERE user_id = $1 GROUP BY user_id", ""},
		{"SELECT name FROM users WHERE id = (SELECT max(id) FROM users WHERE x = $1)", ""},
		{"SELECT name FROM users WHERE id = $1 AND tenant = $2", ""},
		{"SELECT name FROM users WHERE $1 = id", ""},
		{"SELECT name FROM users WHERE id > $1", ""},
	} {
		got, ok := BatchQuery(c.in)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("BatchQuery(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}

func TestQueryColumns(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"SELECT name, tier FROM users WHERE id = $1", []string{"name", "tier"}},
		{"SELECT u.Name, coalesce(t.label, 'none') AS tier_label, \"Mixed\" FROM u", []string{"name", "tier_label", "Mixed"}},
		{"SELECT f(a, b) AS x FROM t", []string{"x"}},
		{"SELECT * FROM users WHERE id = $1", nil},
		{"SELECT a + 1 FROM t", nil},
		{"UPDATE t SET a = 1", nil},
	} {
		got, ok := QueryColumns(c.in)
		if ok != (c.want != nil) || !slices.Equal(got, c.want) {
			t.Errorf("QueryColumns(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}

func TestParams(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		fail bool
	}{
		{"SELECT a FROM t WHERE id = $1", 1, false},
		{"SELECT a FROM t WHERE id = $1 AND b = $2 AND c = $1", 2, false},
		{"SELECT a FROM t WHERE id = $2", 0, true},
		{"SELECT '$1' FROM t", 0, false},
	} {
		n, err := Params(c.in)
		if n != c.n || (err != nil) != c.fail {
			t.Errorf("Params(%q) = %d, %v; want %d, fail %v", c.in, n, err, c.n, c.fail)
		}
	}
}

func TestTemplate(t *testing.T) {
	tm, err := ParseTemplate("user:{user}:{ region }{{x}}")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tm.Names(), []string{"user", "region"}) {
		t.Errorf("names %q", tm.Names())
	}
	if got := tm.Expand(Key{row.Int(42), row.String("eu")}); got != "user:42:eu{x}" {
		t.Errorf("expand: %q", got)
	}
	if got := NewTemplate("users:", ":", []string{"a", "b"}).Expand(Key{row.Int(1), row.Float(2)}); got != "users:1:2" {
		t.Errorf("NewTemplate expand: %q", got)
	}
	for _, bad := range []string{"user", "user:{", "user:}", "user:{a b}"} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q): no error", bad)
		}
	}
}

func TestKeyID(t *testing.T) {
	id := func(k Key) string { return string(AppendKeyID(nil, k)) }
	if id(Key{row.Int(42)}) != id(Key{row.String("42")}) || id(Key{row.Float(42)}) != id(Key{row.Int(42)}) {
		t.Error("42 as int, string and float should be one key")
	}
	if id(Key{row.String("a\x00"), row.String("b")}) == id(Key{row.String("a"), row.String("\x00b")}) {
		t.Error("a composite key collides with a single value")
	}
}

// TestNumericText: numeric keys are matched digit for digit: equal values
// of another scale agree, values one apart beyond 2^53 (the same float64)
// do not.
func TestNumericText(t *testing.T) {
	num := func(s string) pgtype.Numeric {
		var n pgtype.Numeric
		if err := n.Scan(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		return n
	}
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"1.10", "1.1", true},
		{"100", "100.00", true},
		{"0", "0.000", true},
		{"-2.50", "-2.5", true},
		{"12345678901234567890", "12345678901234567891", false},
		{"1.1", "11", false},
		{"10", "1", false},
	} {
		if got := canonGo(num(c.a)) == canonGo(num(c.b)); got != c.same {
			t.Errorf("%s and %s: same canonical text %v, want %v (%q, %q)", c.a, c.b, got, c.same, canonGo(num(c.a)), canonGo(num(c.b)))
		}
	}
}

// TestNumericKeyFromFloat: a float key for a numeric parameter is sent
// as its decimal value whatever its size (Text writes 1e+20 and 1.5e-07,
// which numeric's text input does not read), matching the column's
// value digit for digit.
func TestNumericKeyFromFloat(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{{1e20, "100000000000000000000"}, {1.5e-7, "0.00000015"}, {-2.5, "-2.50"}, {42, "42"}} {
		_, got, err := keyParam(oidNumeric, row.Float(c.f))
		if err != nil {
			t.Errorf("%v: %v", c.f, err)
			continue
		}
		var n pgtype.Numeric
		if err := n.Scan(c.want); err != nil {
			t.Fatal(err)
		}
		if want := canonGo(n); got != want {
			t.Errorf("%v: canonical %q, want %q (as %s)", c.f, got, want, c.want)
		}
	}
}
