package lookup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluicehq/sluice/row"
)

// PostgresConfig configures a PostgreSQL Lookuper.
type PostgresConfig struct {
	// DSN is the connection string (postgres://user@host:5432/db).
	DSN string
	// Query selects the rows of one key; its parameters $1 .. $n are the
	// key's values, in order.
	Query string
	// MaxConns bounds the connections; default 4.
	MaxConns int
	// NoBatch turns the `= ANY($1)` rewrite off (one query per key,
	// pipelined), for comparison in benchmarks.
	NoBatch bool
}

// Postgres looks keys up with a SQL query. It keeps a small pool of
// connections and reconnects after errors.
type Postgres struct {
	cfg     PostgresConfig
	pcfg    *pgx.ConnConfig
	batch   string // the ANY($1) query, "" when not batchable
	cols    []string
	params  []uint32 // parameter type OIDs of Query
	nparams int

	mu     sync.Mutex
	idle   []*pgx.Conn
	open   int
	freed  chan struct{}
	closed bool // Close was called: connections handed back are closed
}

// OpenPostgres connects, prepares the query once to learn its columns and
// parameter types, and returns the Lookuper.
func OpenPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	pcfg, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres lookup: dsn: %w", err)
	}
	n, err := Params(cfg.Query)
	if err != nil {
		return nil, fmt.Errorf("postgres lookup: query: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("postgres lookup: the query has no parameter: select by the key with WHERE id = $1")
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 4
	}
	p := &Postgres{cfg: cfg, pcfg: pcfg, nparams: n, freed: make(chan struct{}, 1)}
	if !cfg.NoBatch {
		if q, ok := BatchQuery(cfg.Query); ok {
			p.batch = q
		}
	}
	conn, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	sd, err := conn.Prepare(ctx, "", cfg.Query)
	if err != nil {
		p.drop(conn)
		return nil, fmt.Errorf("postgres lookup: the query %q: %w", cfg.Query, err)
	}
	for _, f := range sd.Fields {
		p.cols = append(p.cols, f.Name)
	}
	p.params = sd.ParamOIDs
	if p.batch != "" && !matchableKey(p.params[0]) {
		// The key column's values could come back in another text than
		// the keys were sent in (citext, a domain, a custom type): the
		// rows could not be matched back to their keys.
		p.batch = ""
	}
	if p.batch != "" {
		if _, err := conn.Prepare(ctx, "", p.batch); err != nil {
			// The rewrite does not fit this query after all: per key.
			p.batch = ""
		}
	}
	p.put(conn)
	return p, nil
}

// Columns implements Lookuper.
func (p *Postgres) Columns() []string { return p.cols }

// Batched reports whether lookups go out as one `= ANY($1)` query per
// batch (else one query per key, pipelined).
func (p *Postgres) Batched() bool { return p.batch != "" }

// Params returns the number of key values the query takes.
func (p *Postgres) Params() int { return p.nparams }

// Lookup implements Lookuper. A key that the query's parameter types
// cannot hold fails alone (KeyErrors); the others are looked up.
func (p *Postgres) Lookup(ctx context.Context, keys []Key) ([][]Row, error) {
	for _, k := range keys {
		if len(k) != p.nparams {
			return nil, fmt.Errorf("postgres lookup: a key of %d values for a query of %d parameters", len(k), p.nparams)
		}
	}
	// Convert every key before sending any: args[i] is nil for a key
	// that cannot be converted; canon[i] is the text of its first value.
	flat := make([]any, len(keys)*p.nparams)
	args := make([][]any, len(keys))
	canon := make([]string, len(keys))
	var bad []error
	good := 0
	for i, k := range keys {
		a := flat[i*p.nparams : (i+1)*p.nparams : (i+1)*p.nparams]
		for j, v := range k {
			x, c, err := keyParam(p.params[j], v)
			if err != nil {
				if bad == nil {
					bad = make([]error, len(keys))
				}
				bad[i], a = err, nil
				break
			}
			a[j] = x
			if j == 0 {
				canon[i] = c
			}
		}
		if args[i] = a; a != nil {
			good++
		}
	}
	out := make([][]Row, len(keys))
	if good > 0 {
		conn, err := p.get(ctx)
		if err != nil {
			return nil, err
		}
		if p.batch != "" {
			err = p.lookupAny(ctx, conn, args, canon, out)
		} else {
			err = p.lookupEach(ctx, conn, args, out)
		}
		if err != nil {
			p.drop(conn) // its state is unknown: reconnect next time
			return nil, fmt.Errorf("postgres lookup: %w", err)
		}
		p.put(conn)
	}
	if bad != nil {
		return out, &KeyErrors{Errs: bad}
	}
	return out, nil
}

// lookupAny answers the keys whose args are not nil into out with one
// `= ANY($1)` query.
func (p *Postgres) lookupAny(ctx context.Context, conn *pgx.Conn, args [][]any, canon []string, out [][]Row) error {
	oid := p.params[0]
	pos := make(map[string][]int, len(args))
	first := make([]any, 0, len(args))
	for i, a := range args {
		if a != nil {
			pos[canon[i]] = append(pos[canon[i]], i)
			first = append(first, a[0])
		}
	}
	rows, err := conn.Query(ctx, p.batch, keyArray(first))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return err
		}
		if err := p.checkWidth(len(vals) - 1); err != nil {
			return err
		}
		r := make(Row, len(vals)-1)
		for i, v := range vals[1:] {
			r[i] = FromPG(v)
		}
		for _, i := range pos[canonCol(oid, vals[0])] {
			out[i] = append(out[i], r)
		}
	}
	return rows.Err()
}

// lookupEach answers the keys whose args are not nil into out with one
// query per key, pipelined.
func (p *Postgres) lookupEach(ctx context.Context, conn *pgx.Conn, args [][]any, out [][]Row) error {
	b := &pgx.Batch{}
	for _, a := range args {
		if a != nil {
			b.Queue(p.cfg.Query, a...)
		}
	}
	br := conn.SendBatch(ctx, b)
	for i, a := range args {
		if a == nil {
			continue
		}
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return err
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err == nil {
				err = p.checkWidth(len(vals))
			}
			if err != nil {
				rows.Close()
				br.Close()
				return err
			}
			r := make(Row, len(vals))
			for j, v := range vals {
				r[j] = FromPG(v)
			}
			out[i] = append(out[i], r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

// checkWidth fails when the query returns n columns, not those it
// returned when it was prepared at open (the table changed under a
// SELECT *): rows are read by column position.
func (p *Postgres) checkWidth(n int) error {
	if n != len(p.cols) {
		return fmt.Errorf("the query now returns %d columns, %d (%s) when the lookup started: the table changed; restart the job to use its new columns", n, len(p.cols), strings.Join(p.cols, ", "))
	}
	return nil
}

// get takes an idle connection or opens one, waiting while MaxConns are
// in use.
func (p *Postgres) get(ctx context.Context) (*pgx.Conn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errors.New("postgres lookup: closed")
		}
		if n := len(p.idle); n > 0 {
			c := p.idle[n-1]
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			if n > 1 {
				// freed holds one wake-up: pass it on to the next waiter
				// while idle connections remain.
				p.signal()
			}
			return c, nil
		}
		if p.open < p.cfg.MaxConns {
			p.open++
			room := p.open < p.cfg.MaxConns
			p.mu.Unlock()
			if room {
				p.signal() // another waiter may open one too
			}
			c, err := pgx.ConnectConfig(ctx, p.pcfg.Copy())
			if err != nil {
				p.release()
				return nil, fmt.Errorf("postgres lookup: connect: %w", err)
			}
			return c, nil
		}
		p.mu.Unlock()
		select {
		case <-p.freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (p *Postgres) put(c *pgx.Conn) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.drop(c) // in use when Close ran: close it now
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
	p.signal()
}

func (p *Postgres) drop(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = c.Close(ctx)
	cancel()
	p.release()
}

func (p *Postgres) release() {
	p.mu.Lock()
	p.open--
	p.mu.Unlock()
	p.signal()
}

func (p *Postgres) signal() {
	select {
	case p.freed <- struct{}{}:
	default:
	}
}

// Close implements Lookuper.
func (p *Postgres) Close() error {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var first error
	for _, c := range idle {
		if err := c.Close(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// PostgreSQL type OIDs the key conversion knows.
const (
	oidBool        = 16
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidFloat4      = 700
	oidFloat8      = 701
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidTimestamp   = 1114
	oidTimestampTZ = 1184
	oidNumeric     = 1700
	oidUUID        = 2950
)

// keyParam converts a key value to the Go value pgx sends for a parameter
// of type oid, and its canonical text (canonGo).
func keyParam(oid uint32, v row.Value) (any, string, error) {
	bad := func() (any, string, error) {
		return nil, "", fmt.Errorf("key value %q (%s) cannot be compared with the query's parameter type (oid %d)", Text(v), v.Kind(), oid)
	}
	switch oid {
	case oidInt2, oidInt4, oidInt8, oidOID:
		var n int64
		switch v.Kind() {
		case row.KindInt:
			n = v.AsInt()
		case row.KindFloat:
			f := v.AsFloat()
			if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
				return bad()
			}
			n = int64(f)
		case row.KindString:
			var err error
			if n, err = strconv.ParseInt(strings.TrimSpace(v.AsString()), 10, 64); err != nil {
				return bad()
			}
		default:
			return bad()
		}
		if lo, hi := intRange(oid); n < lo || n > hi {
			return bad() // the parameter cannot hold it (pgx would refuse the batch)
		}
		return n, canonGo(n), nil
	case oidFloat4, oidFloat8:
		var f float64
		switch v.Kind() {
		case row.KindInt, row.KindFloat:
			f = v.AsFloat()
		case row.KindString:
			var err error
			if f, err = strconv.ParseFloat(strings.TrimSpace(v.AsString()), 64); err != nil {
				return bad()
			}
		default:
			return bad()
		}
		if oid == oidFloat4 {
			// The server compares as real: so do the canonical texts.
			return f, canonGo(float32(f)), nil
		}
		return f, canonGo(f), nil
	case oidBool:
		switch v.Kind() {
		case row.KindBool:
			return v.AsBool(), canonGo(v.AsBool()), nil
		case row.KindString:
			b, err := strconv.ParseBool(v.AsString())
			if err != nil {
				return bad()
			}
			return b, canonGo(b), nil
		}
		return bad()
	case oidNumeric:
		var n pgtype.Numeric
		s := Text(v)
		if v.Kind() == row.KindFloat {
			// Positional: numeric's text input reads no exponent.
			s = strconv.FormatFloat(v.AsFloat(), 'f', -1, 64)
		}
		if err := n.Scan(s); err != nil {
			return bad()
		}
		return n, canonGo(n), nil
	case oidUUID:
		var u pgtype.UUID
		if err := u.Scan(Text(v)); err != nil {
			return bad()
		}
		return u, canonGo(u), nil
	case oidTimestamp, oidTimestampTZ:
		var ms int64
		switch v.Kind() {
		case row.KindTimestamp, row.KindInt:
			ms = v.AsInt()
		case row.KindString:
			t, ok := parseTime(v.AsString())
			if !ok {
				return bad()
			}
			ms = t.UnixMilli()
		default:
			return bad()
		}
		t := time.UnixMilli(ms).UTC()
		return t, canonGo(t), nil
	}
	s := Text(v)
	if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
		// The server refuses them (pgx talks UTF-8), and the whole
		// batch with them.
		return bad()
	}
	if oid == oidBPChar {
		return s, strings.TrimRight(s, " "), nil
	}
	return s, s, nil
}

// intRange is the range of the integer parameter type oid.
func intRange(oid uint32) (int64, int64) {
	switch oid {
	case oidInt2:
		return math.MinInt16, math.MaxInt16
	case oidInt4:
		return math.MinInt32, math.MaxInt32
	case oidOID:
		return 0, math.MaxUint32
	}
	return math.MinInt64, math.MaxInt64
}

// matchableKey reports whether the rows of a `= ANY($1)` query whose key
// parameter has type oid can be matched back to their keys by canonical
// text (canonCol against keyParam's): the types keyParam knows.
func matchableKey(oid uint32) bool {
	switch oid {
	case oidBool, oidName, oidInt8, oidInt2, oidInt4, oidText, oidOID, oidFloat4, oidFloat8,
		oidBPChar, oidVarchar, oidTimestamp, oidTimestampTZ, oidNumeric, oidUUID:
		return true
	}
	return false
}

// canonCol is the canonical text of a key column's value v received for
// a key parameter of type oid: char(n) comes back padded with spaces,
// which its comparisons ignore.
func canonCol(oid uint32, v any) string {
	if s, ok := v.(string); ok && oid == oidBPChar {
		return strings.TrimRight(s, " ")
	}
	return canonGo(v)
}

// numericText is an exact canonical text of a numeric: its digits
// without trailing zeros and the power of ten they are scaled by, so
// that 1.10 and 1.1 agree and 12345678901234567890 and
// 12345678901234567891 (the same float64) do not.
func numericText(n pgtype.Numeric) string {
	switch {
	case !n.Valid:
		return "null"
	case n.NaN:
		return "NaN"
	case n.InfinityModifier != pgtype.Finite:
		return n.InfinityModifier.String()
	case n.Int == nil || n.Int.Sign() == 0:
		return "0"
	}
	digits, exp := new(big.Int).Set(n.Int), int64(n.Exp)
	ten, q, r := big.NewInt(10), new(big.Int), new(big.Int)
	for {
		q.QuoRem(digits, ten, r)
		if r.Sign() != 0 {
			break
		}
		digits, q = q, digits
		exp++
	}
	return digits.String() + "e" + strconv.FormatInt(exp, 10)
}

// keyArray gathers the converted first values of keys (keyParam's, all
// of one parameter type) into the array parameter of a `= ANY($1)` query.
func keyArray(vals []any) any {
	var (
		ints   []int64
		floats []float64
		bools  []bool
		nums   []pgtype.Numeric
		uuids  []pgtype.UUID
		times  []time.Time
		strs   []string
	)
	for _, a := range vals {
		switch a := a.(type) {
		case int64:
			ints = append(ints, a)
		case float64:
			floats = append(floats, a)
		case bool:
			bools = append(bools, a)
		case pgtype.Numeric:
			nums = append(nums, a)
		case pgtype.UUID:
			uuids = append(uuids, a)
		case time.Time:
			times = append(times, a)
		case string:
			strs = append(strs, a)
		}
	}
	switch {
	case ints != nil:
		return ints
	case floats != nil:
		return floats
	case bools != nil:
		return bools
	case nums != nil:
		return nums
	case uuids != nil:
		return uuids
	case times != nil:
		return times
	}
	return strs
}

// canonGo is the text by which a key sent and the key column received
// are matched.
func canonGo(v any) string {
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case int16:
		return strconv.FormatInt(int64(v), 10)
	case uint32:
		return strconv.FormatInt(int64(v), 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	case bool:
		return strconv.FormatBool(v)
	case string:
		return v
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case pgtype.Numeric:
		return numericText(v)
	case pgtype.UUID:
		return uuidText(v.Bytes)
	case [16]byte:
		return uuidText(v)
	}
	return fmt.Sprint(v)
}

func uuidText(b [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// FromPG converts a value pgx decoded into a row value: integers, floats,
// text, booleans and timestamps as such, numeric as a float, uuid as its
// text, json and arrays as JSON.
func FromPG(v any) row.Value {
	switch v := v.(type) {
	case nil:
		return row.Null()
	case string:
		return row.String(v)
	case []byte:
		return row.String(string(v))
	case pgtype.Numeric:
		f, err := v.Float64Value()
		if err != nil || !f.Valid {
			return row.Null()
		}
		return row.Float(f.Float64)
	case [16]byte:
		return row.String(uuidText(v))
	case time.Time:
		return row.Timestamp(v.UnixMilli())
	}
	if r, err := row.FromAny(v); err == nil {
		return r
	}
	if b, err := json.Marshal(v); err == nil {
		return row.JSON(string(b))
	}
	return row.String(fmt.Sprint(v))
}

// parseTime reads a timestamp as RFC 3339 or as PostgreSQL and SQL write
// it ("2024-01-02 10:00:00.5", with or without a zone; UTC when none).
func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
