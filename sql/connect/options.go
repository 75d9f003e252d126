package connect

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Options are a table's WITH options, keys lower-cased as the user wrote
// them ('connector', 'format', 'json.timestamp-format', 'topic', ...).
type Options map[string]string

// connSpec describes one connector: what it can be and which options it
// takes.
type connSpec struct {
	name    string
	aliases []string
	source  bool
	sink    bool
	// options the connector takes besides 'connector' (and besides the
	// format's own options when formats is set).
	options []string
	// formats lists the formats allowed under 'format' (nil: no format).
	formats []string
	// formatKeys are the option keys that name a format ('format',
	// 'value.format', 'key.format').
	formatKeys []string
	// updates says whether the sink takes -U/+U/-D rows.
	updates func(opts Options, pk []int) bool
	// lookup: the table can be looked up live by a lookup join (FOR
	// SYSTEM_TIME AS OF), see lookup.go.
	lookup bool
}

// formatOptions are the options each format takes, without its prefix.
var formatOptions = map[string][]string{
	"json": {"timestamp-format", "ignore-parse-errors", "fail-on-missing-field", "encode.decimal-as-plain-number", "map-null-key.mode"},
	"csv":  {"field-delimiter", "ignore-parse-errors", "null-literal", "timestamp-format"},
}

var textFormats = []string{"json", "csv"}

var specs = []*connSpec{
	{
		name: "nexmark", source: true,
		options: []string{
			"events.num", "first-event.rate", "next-event.rate", "rate.shape", "rate.period", "rate.limited",
			"person.proportion", "auction.proportion", "bid.proportion",
			"person.avg-size", "auction.avg-size", "bid.avg-size",
			"bid.hot-ratio.auctions", "bid.hot-ratio.bidders", "auction.hot-ratio.sellers",
			"keep-alive", "stop-at", "max-emit-speed",
			"seed", "base-time", "splits",
		},
	},
	{
		name: "filesystem", aliases: []string{"file"}, source: true, sink: true,
		options: []string{"path", "source.monitor-interval", "sink.rolling-policy.file-size", "sink.rolling-policy.rollover-interval"},
		formats: []string{"json", "csv", "parquet"}, formatKeys: []string{"format"},
	},
	{
		name: "kafka", source: true, sink: true,
		options: []string{
			"topic", "properties.bootstrap.servers", "properties.group.id", "scan.startup.mode",
			"scan.bounded.mode", "sink.partitioner", "sink.delivery-guarantee", "sink.transactional-id-prefix",
			"key.fields", "value.fields-include",
		},
		formats: textFormats, formatKeys: []string{"format", "value.format", "key.format"},
	},
	{
		name: "upsert-kafka", source: true, sink: true,
		options: []string{
			"topic", "properties.bootstrap.servers", "properties.group.id", "scan.bounded.mode",
			"sink.delivery-guarantee", "sink.transactional-id-prefix", "value.fields-include",
		},
		formats: []string{"json"}, formatKeys: []string{"key.format", "value.format"},
		updates: func(_ Options, pk []int) bool { return len(pk) > 0 },
	},
	{
		name: "sluice", aliases: []string{"log"}, source: true, sink: true,
		options: []string{"topic", "scan.startup.mode", "scan.bounded.mode", "sink.partitions", "key.fields"},
		formats: textFormats, formatKeys: []string{"format"},
	},
	{
		name: "datagen", source: true,
		options: []string{"rows-per-second", "number-of-rows", "seed", "fields.*.kind", "fields.*.min", "fields.*.max", "fields.*.length", "fields.*.start", "fields.*.end", "fields.*.null-rate"},
	},
	{
		name: "print", aliases: []string{"stdout"}, sink: true,
		options: []string{"print-identifier", "standard-error", "json.timestamp-format"},
		updates: func(Options, []int) bool { return true },
	},
	{
		name: "blackhole", sink: true,
		updates: func(Options, []int) bool { return true },
	},
	{
		name: "postgres", aliases: []string{"jdbc"}, sink: true, lookup: true,
		options: append([]string{"url", "dsn", "table-name", "username", "password", "sink.buffer-flush.max-rows", "sink.exactly-once"}, lookupOptions...),
		updates: func(_ Options, pk []int) bool { return len(pk) > 0 },
	},
	{
		name: "redis", lookup: true,
		options: append([]string{"url", "key.prefix", "key.separator", "data-type"}, lookupOptions...),
	},
	{
		name: "http", source: true,
		options: []string{"address", "path", "token", "rate", "burst", "buffer-records"},
		formats: []string{"json"}, formatKeys: []string{"format"},
	},
}

// Connectors returns the names of the connectors, aliases included,
// sorted.
func Connectors() []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.name)
		out = append(out, s.aliases...)
	}
	sort.Strings(out)
	return out
}

func lookup(name string) *connSpec {
	for _, s := range specs {
		if s.name == name {
			return s
		}
		for _, a := range s.aliases {
			if a == name {
				return s
			}
		}
	}
	return nil
}

// spec returns the connector named by opts, or an error naming the
// allowed ones.
func spec(opts Options) (*connSpec, string, error) {
	name, ok := opts["connector"]
	if !ok || name == "" {
		return nil, "", fmt.Errorf("no 'connector' option: add WITH ('connector' = '...'), one of %s", quoteList(Connectors()))
	}
	if s := lookup(name); s != nil {
		return s, name, nil
	}
	return nil, name, fmt.Errorf("unknown connector '%s'%s (allowed: %s)", name, didYouMean(name, Connectors()), quoteList(Connectors()))
}

// CheckOptions checks a table's options for use as a source (sink false)
// or a sink: the connector exists and can be one, every option is one the
// connector (or its format) takes, and formats are known.
func CheckOptions(opts Options, sink bool) error {
	s, name, err := spec(opts)
	if err != nil {
		return err
	}
	if !s.source && !s.sink && s.lookup {
		return fmt.Errorf("connector '%s' is only read by lookup joins (JOIN ... FOR SYSTEM_TIME AS OF), one key at a time: it cannot be scanned or written", name)
	}
	if sink && !s.sink {
		return fmt.Errorf("connector '%s' cannot be a sink (it is a source only); sinks: %s", name, quoteList(connectorsWhere(func(c *connSpec) bool { return c.sink })))
	}
	if !sink && !s.source {
		return fmt.Errorf("connector '%s' cannot be a source (it is a sink only); sources: %s", name, quoteList(connectorsWhere(func(c *connSpec) bool { return c.source })))
	}
	allowed := s.allowedKeys(opts)
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "connector" || matchKey(allowed, k) {
			continue
		}
		return fmt.Errorf("unknown option '%s' for connector %s%s (allowed: %s)", k, s.name, didYouMean(k, allowed), quoteList(allowed))
	}
	for _, fk := range s.formatKeys {
		f, ok := opts[fk]
		if !ok {
			continue
		}
		if !contains(s.formats, f) {
			return fmt.Errorf("unknown %s '%s' for connector %s%s (allowed: %s)", fk, f, s.name, didYouMean(f, s.formats), quoteList(s.formats))
		}
	}
	return nil
}

func connectorsWhere(f func(*connSpec) bool) []string {
	var out []string
	for _, s := range specs {
		if f(s) {
			out = append(out, s.name)
			out = append(out, s.aliases...)
		}
	}
	sort.Strings(out)
	return out
}

// allowedKeys returns the connector's options plus those of the formats
// opts names, sorted.
func (s *connSpec) allowedKeys(opts Options) []string {
	out := append([]string(nil), s.options...)
	out = append(out, s.formatKeys...)
	for _, fk := range s.formatKeys {
		prefix := strings.TrimSuffix(fk, "format") // "", "value.", "key."
		if f, ok := opts[fk]; ok {
			for _, o := range formatOptions[f] {
				out = append(out, prefix+f+"."+o)
			}
		}
	}
	sort.Strings(out)
	return dedup(out)
}

// matchKey reports k among allowed, where "fields.*.kind" matches any
// one field name in place of the star.
func matchKey(allowed []string, k string) bool {
	for _, a := range allowed {
		if a == k {
			return true
		}
		if i := strings.IndexByte(a, '*'); i >= 0 {
			pre, suf := a[:i], a[i+1:]
			if len(k) > len(pre)+len(suf) && strings.HasPrefix(k, pre) && strings.HasSuffix(k, suf) {
				return true
			}
		}
	}
	return false
}

func dedup(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = "'" + v + "'"
	}
	return strings.Join(q, ", ")
}

// didYouMean returns "; did you mean 'x'?" for the candidate nearest to
// s by edit distance, when it is near enough to be a likely typo.
func didYouMean(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(s, c)
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(2, len(s)/3) {
		return ""
	}
	return "; did you mean '" + best + "'?"
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// AcceptsUpdates reports whether a sink with these options (and primary
// key columns pk) takes an updating result (-U, +U, -D rows): 'print',
// 'stdout' and 'blackhole' always, 'upsert-kafka' and 'postgres'/'jdbc'
// with a PRIMARY KEY; every other sink is append-only.
func AcceptsUpdates(opts Options, pk []int) (bool, error) {
	s, _, err := spec(opts)
	if err != nil {
		return false, err
	}
	return s.updates != nil && s.updates(opts, pk), nil
}

// ErrAppendOnly returns the error for an updating query into the
// append-only sink table sink; why (may be empty) says what makes the
// query updating, such as "GROUP BY without a window".
func ErrAppendOnly(sink string, opts Options, why string) error {
	if why != "" {
		why = " (" + why + ")"
	}
	return fmt.Errorf("sink %s (connector '%s') is append-only but the query produces updates%s; use a sink that accepts updates: 'postgres' with a PRIMARY KEY, 'upsert-kafka', 'stdout' or 'print'", sink, opts["connector"], why)
}

// Option accessors, each with the table and key in its error.

func optInt(opts Options, key string, def int64) (int64, error) {
	v, ok := opts[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("option '%s' = '%s' is not an integer", key, v)
	}
	return n, nil
}

func optBool(opts Options, key string, def bool) (bool, error) {
	v, ok := opts[key]
	if !ok {
		return def, nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("option '%s' = '%s' is not a boolean: use 'true' or 'false'", key, v)
}

func optEnum(opts Options, key, def string, allowed ...string) (string, error) {
	v, ok := opts[key]
	if !ok {
		return def, nil
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, nil
		}
	}
	return "", fmt.Errorf("option '%s' = '%s' is not allowed%s (allowed: %s)", key, v, didYouMean(v, allowed), quoteList(allowed))
}

// optSize parses a memory size: 200, 200b, 1kb, 4mb.
func optSize(opts Options, key string, def int64) (int64, error) {
	v, ok := opts[key]
	if !ok {
		return def, nil
	}
	s := strings.ToLower(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"bytes", 1}, {"b", 1}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suf)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("option '%s' = '%s' is not a size: write bytes such as '200b', '4kb' or '1mb'", key, v)
	}
	return n * mult, nil
}
