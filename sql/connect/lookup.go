package connect

import (
	"context"
	"fmt"
	neturl "net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	lookupc "github.com/sluicehq/sluice/connector/lookup"
	"github.com/sluicehq/sluice/row"
)

// lookupOptions are the options of tables that lookup joins read live,
// with Flink's names.
var lookupOptions = []string{"lookup.cache.max-rows", "lookup.cache.ttl", "lookup.max-retries"}

// LookupTable is a table a lookup join reads row by row.
type LookupTable struct {
	Name    string
	Columns []Column
	Options Options
	// KeyCols are the columns (indexes into Columns) the join gives
	// values for, in the order of the keys passed to Get.
	KeyCols []int
}

// IsLookup reports whether a table with these options is looked up live
// (PostgreSQL, Redis) rather than read whole when the job starts.
func IsLookup(opts Options) bool {
	s, _, err := spec(opts)
	return err == nil && s.lookup
}

// Lookup answers a lookup join's keys with the current rows of a
// PostgreSQL table or Redis keys, through a cache (connector/lookup).
type Lookup struct {
	t      LookupTable
	client *lookupc.Client
	// pos[i] is the position of column i in the looked-up rows; -1: a
	// key column Redis does not store, filled from the key.
	pos  []int
	desc string
}

// OpenLookup connects to the table's system. A postgres table is read
// with SELECT columns FROM 'table-name' WHERE key = $1 (one `= ANY($1)`
// query per batch for a single key column); a redis table at key
// 'key.prefix' + key values joined by 'key.separator', a hash
// ('data-type' = 'hash', default) or a string holding a JSON object.
func OpenLookup(ctx context.Context, t LookupTable, env Env) (*Lookup, error) {
	if err := CheckLookupOptions(t.Options); err != nil {
		return nil, fmt.Errorf("table %s: %w", t.Name, err)
	}
	for _, c := range t.Columns {
		if len(c.Path) > 0 || c.Metadata != "" {
			return nil, fmt.Errorf("table %s: column %s: a looked-up table has plain columns (no ROW fields or METADATA)", t.Name, c.Name)
		}
	}
	cfg := lookupc.Config{}
	if v, ok := t.Options["lookup.cache.max-rows"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("table %s: option 'lookup.cache.max-rows' = '%s' is not a number of rows", t.Name, v)
		}
		cfg.CacheSize = n
	}
	if v, ok := t.Options["lookup.cache.ttl"]; ok {
		d, err := parseFlinkDuration(v)
		if err != nil {
			return nil, fmt.Errorf("table %s: option 'lookup.cache.ttl': %w", t.Name, err)
		}
		cfg.CacheTTL = d
	}
	if cfg.CacheSize > 0 && cfg.CacheTTL <= 0 {
		return nil, fmt.Errorf("table %s: 'lookup.cache.max-rows' needs 'lookup.cache.ttl' (how stale a cached row may be, like '1 min')", t.Name)
	}
	if cfg.CacheTTL > 0 && cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if v, ok := t.Options["lookup.max-retries"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("table %s: option 'lookup.max-retries' = '%s' is not a number", t.Name, v)
		}
		cfg.Retries = n
		if n == 0 {
			cfg.Retries = -1
		}
	}
	l := &Lookup{t: t, pos: make([]int, len(t.Columns))}
	s, _, _ := spec(t.Options)
	var (
		lk  lookupc.Lookuper
		err error
	)
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch s.name {
	case "postgres":
		lk, err = l.openPostgres(octx)
	case "redis":
		lk, err = l.openRedis(octx)
	default:
		err = fmt.Errorf("connector '%s' cannot be looked up", s.name)
	}
	if err != nil {
		return nil, fmt.Errorf("table %s (connector '%s'): %w", t.Name, t.Options["connector"], err)
	}
	if cfg.CacheSize > 0 {
		l.desc += fmt.Sprintf(", cache %d rows for %s", cfg.CacheSize, cfg.CacheTTL)
	}
	if l.client, err = lookupc.NewClient(lk, cfg); err != nil {
		lk.Close()
		return nil, fmt.Errorf("table %s: %w", t.Name, err)
	}
	return l, nil
}

func (l *Lookup) openPostgres(ctx context.Context) (lookupc.Lookuper, error) {
	dsn := l.t.Options["dsn"]
	if u := l.t.Options["url"]; u != "" {
		dsn = strings.Replace(u, "jdbc:postgresql://", "postgres://", 1)
	}
	if dsn == "" {
		return nil, fmt.Errorf("option 'url' is required: postgres://host:5432/db (or jdbc:postgresql://host:5432/db)")
	}
	if u, p := l.t.Options["username"], l.t.Options["password"]; u != "" || p != "" {
		dsn = rebuildDSN(dsn, u, p)
	}
	table := l.t.Options["table-name"]
	if table == "" {
		table = l.t.Name
	}
	var cols, where []string
	for i, c := range l.t.Columns {
		cols = append(cols, pgx.Identifier{c.Name}.Sanitize()+"::text")
		l.pos[i] = i
	}
	for n, k := range l.t.KeyCols {
		where = append(where, fmt.Sprintf("%s = $%d", pgx.Identifier{l.t.Columns[k].Name}.Sanitize(), n+1))
	}
	q := fmt.Sprintf("SELECT %s FROM %s WHERE %s", strings.Join(cols, ", "), pgx.Identifier(strings.Split(table, ".")).Sanitize(), strings.Join(where, " AND "))
	p, err := lookupc.OpenPostgres(ctx, lookupc.PostgresConfig{DSN: dsn, Query: q})
	if err != nil {
		return nil, err
	}
	mode := "one query per key, pipelined"
	if p.Batched() {
		mode = "one = ANY($1) query per batch"
	}
	l.desc = fmt.Sprintf("postgres %s, %s", table, mode)
	return p, nil
}

// rebuildDSN sets the user and password of a URL or key=value DSN.
func rebuildDSN(dsn, user, password string) string {
	var b strings.Builder
	b.WriteString(dsn)
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		if user != "" {
			fmt.Fprintf(&b, "%suser=%s", sep, neturl.QueryEscape(user))
			sep = "&"
		}
		if password != "" {
			fmt.Fprintf(&b, "%spassword=%s", sep, neturl.QueryEscape(password))
		}
		return b.String()
	}
	if user != "" {
		fmt.Fprintf(&b, " user='%s'", strings.ReplaceAll(user, "'", `\'`))
	}
	if password != "" {
		fmt.Fprintf(&b, " password='%s'", strings.ReplaceAll(password, "'", `\'`))
	}
	return b.String()
}

func (l *Lookup) openRedis(ctx context.Context) (lookupc.Lookuper, error) {
	url := l.t.Options["url"]
	if url == "" {
		url = "redis://127.0.0.1:6379"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("option 'url' = '%s': %w (like redis://127.0.0.1:6379/0)", url, err)
	}
	typ, err := optEnum(l.t.Options, "data-type", lookupc.RedisHash, lookupc.RedisHash, lookupc.RedisString)
	if err != nil {
		return nil, err
	}
	prefix, ok := l.t.Options["key.prefix"]
	if !ok {
		prefix = l.t.Name + ":"
	}
	sep, ok := l.t.Options["key.separator"]
	if !ok {
		sep = ":"
	}
	var fields, names []string
	for i, c := range l.t.Columns {
		if containsInt(l.t.KeyCols, i) {
			l.pos[i] = -1 // from the key
			continue
		}
		l.pos[i] = len(fields)
		fields = append(fields, c.Name)
	}
	for _, k := range l.t.KeyCols {
		names = append(names, l.t.Columns[k].Name)
	}
	if len(fields) == 0 {
		return nil, fmt.Errorf("the table has only key columns: declare the hash fields (or JSON members) to read as columns")
	}
	r, err := lookupc.OpenRedis(ctx, lookupc.RedisConfig{Options: *opts, Key: lookupc.NewTemplate(prefix, sep, names), Type: typ, Fields: fields})
	if err != nil {
		return nil, err
	}
	l.desc = fmt.Sprintf("redis %s keys %s{%s}", typ, prefix, strings.Join(names, "}"+sep+"{"))
	return r, nil
}

// CheckLookupOptions checks the options of a table looked up live.
func CheckLookupOptions(opts Options) error {
	s, name, err := spec(opts)
	if err != nil {
		return err
	}
	if !s.lookup {
		return fmt.Errorf("connector '%s' cannot be looked up", name)
	}
	allowed := s.allowedKeys(opts)
	for k := range opts {
		if k != "connector" && !matchKey(allowed, k) {
			return fmt.Errorf("unknown option '%s' for connector %s%s (allowed: %s)", k, s.name, didYouMean(k, allowed), quoteList(allowed))
		}
	}
	return nil
}

// Describe says how rows are looked up, for EXPLAIN.
func (l *Lookup) Describe() string { return l.desc }

// Metrics returns the lookup's counters.
func (l *Lookup) Metrics() *lookupc.Metrics { return l.client.Metrics() }

// Get returns the rows of each key (values of KeyCols, in the join's
// SQL types), each a full row of Columns converted to their types.
func (l *Lookup) Get(ctx context.Context, keys [][]row.Value) ([][][]row.Value, error) {
	ks := make([]lookupc.Key, len(keys))
	for i, k := range keys {
		lk := make(lookupc.Key, len(k))
		for j, v := range k {
			if v.IsNull() {
				lk[j] = v
				continue
			}
			// The key as the text SQL writes for its type (DECIMAL
			// scaled, DATE as a date, ...).
			lk[j] = row.String(pgText(l.t.Columns[l.t.KeyCols[j]].Type, v).(string))
		}
		ks[i] = lk
	}
	res, err := l.client.Get(ctx, ks)
	if err != nil {
		return nil, fmt.Errorf("lookup join on %s: %w", l.t.Name, err)
	}
	out := make([][][]row.Value, len(keys))
	for i, rows := range res {
		for _, r := range rows {
			vals := make([]row.Value, len(l.t.Columns))
			for c, col := range l.t.Columns {
				var v row.Value
				if p := l.pos[c]; p >= 0 {
					v = r[p]
				} else {
					v = ks[i][indexOf(l.t.KeyCols, c)]
				}
				if v.IsNull() {
					continue
				}
				cv, err := parseText(lookupc.Text(v), col.Type)
				if err != nil {
					return nil, fmt.Errorf("lookup join on %s: column %s: %w", l.t.Name, col.Name, err)
				}
				vals[c] = cv
			}
			out[i] = append(out[i], vals)
		}
	}
	return out, nil
}

func indexOf(s []int, v int) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// Close closes the connections.
func (l *Lookup) Close() error { return l.client.Close() }

var flinkDurRe = regexp.MustCompile(`^\s*([0-9]+)\s*([a-z]*)\s*$`)

// parseFlinkDuration reads a duration as Flink writes them ('10 min',
// '1h', '30 s', '500ms') or as Go does ('1m30s').
func parseFlinkDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(strings.ReplaceAll(s, " ", "")); err == nil && d >= 0 {
		return d, nil
	}
	m := flinkDurRe.FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		return 0, fmt.Errorf("'%s' is not a duration such as '10 min', '30 s' or '1 h'", s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	units := map[string]time.Duration{
		"": time.Millisecond, "ms": time.Millisecond, "milli": time.Millisecond, "millis": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
		"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
		"min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
		"h": time.Hour, "hour": time.Hour, "hours": time.Hour, "d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	}
	u, ok := units[m[2]]
	if !ok {
		return 0, fmt.Errorf("'%s': unknown unit '%s' (ms, s, min, h, d)", s, m[2])
	}
	return time.Duration(n) * u, nil
}
