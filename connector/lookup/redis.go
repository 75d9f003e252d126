package lookup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fastjson"

	"github.com/sluicehq/sluice/row"
)

// Redis value types.
const (
	RedisHash   = "hash"
	RedisString = "string"
)

// Template is a Redis key pattern such as "user:{user}": literal text
// around placeholders, each filled with one key value in order.
type Template struct {
	lits  []string // len(names)+1
	names []string
}

// ParseTemplate parses a key pattern with {field} placeholders ({{ and }}
// stand for literal braces).
func ParseTemplate(s string) (Template, error) {
	var t Template
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '{':
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return Template{}, fmt.Errorf("key %q: unclosed {", s)
			}
			name := strings.TrimSpace(s[i+1 : i+j])
			if !identRe.MatchString(name) {
				return Template{}, fmt.Errorf("key %q: {%s} is not a field name", s, name)
			}
			t.lits = append(t.lits, lit.String())
			lit.Reset()
			t.names = append(t.names, name)
			i += j
		case c == '}':
			return Template{}, fmt.Errorf("key %q: } without {; write }} for a literal brace", s)
		default:
			lit.WriteByte(c)
		}
	}
	t.lits = append(t.lits, lit.String())
	if len(t.names) == 0 {
		return Template{}, fmt.Errorf("key %q has no {field} placeholder: name the record field that makes the key, like user:{user}", s)
	}
	return t, nil
}

// NewTemplate is the pattern prefix{0}sep{1}sep...: names[i] fills
// position i, joined by sep.
func NewTemplate(prefix, sep string, names []string) Template {
	t := Template{lits: []string{prefix}, names: names}
	for i := 1; i < len(names); i++ {
		t.lits = append(t.lits, sep)
	}
	return Template{lits: append(t.lits, ""), names: names}
}

// Names returns the placeholders' names, in order.
func (t Template) Names() []string { return t.names }

// Expand fills the placeholders with the values of k.
func (t Template) Expand(k Key) string {
	var b []byte
	for i, v := range k {
		b = append(b, t.lits[i]...)
		b = appendText(b, v)
	}
	return string(append(b, t.lits[len(k)]...))
}

// RedisConfig configures a Redis Lookuper.
type RedisConfig struct {
	Options redis.Options
	// Key makes the Redis key of a lookup key.
	Key Template
	// Type is RedisHash (fields of a hash) or RedisString (a string
	// value: a JSON object's members, or the whole value as the first
	// field).
	Type string
	// Fields are the columns: hash fields or JSON members.
	Fields []string
}

// Redis looks keys up in Redis: one MGET (strings) or one pipeline of
// HGETALL (hashes) per batch.
type Redis struct {
	cfg RedisConfig
	cli *redis.Client
}

// OpenRedis returns a Redis Lookuper; it pings the server to report a
// wrong address at once.
func OpenRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	if cfg.Type != RedisHash && cfg.Type != RedisString {
		return nil, fmt.Errorf("redis lookup: type %q: allowed: hash, string", cfg.Type)
	}
	if len(cfg.Fields) == 0 {
		return nil, fmt.Errorf("redis lookup: no fields: name the hash fields or JSON members to read")
	}
	opts := cfg.Options
	cli := redis.NewClient(&opts)
	if err := cli.Ping(ctx).Err(); err != nil {
		cli.Close()
		return nil, fmt.Errorf("redis lookup: %s: %w", opts.Addr, err)
	}
	return &Redis{cfg: cfg, cli: cli}, nil
}

// Columns implements Lookuper.
func (r *Redis) Columns() []string { return r.cfg.Fields }

// Lookup implements Lookuper.
func (r *Redis) Lookup(ctx context.Context, keys []Key) ([][]Row, error) {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = r.cfg.Key.Expand(k)
	}
	out := make([][]Row, len(keys))
	if r.cfg.Type == RedisString {
		vals, err := r.cli.MGet(ctx, names...).Result()
		if err != nil {
			return nil, fmt.Errorf("redis lookup: MGET: %w", err)
		}
		var p fastjson.Parser
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // nil: no such key
			}
			out[i] = []Row{r.stringRow(&p, s)}
		}
		return out, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	_, err := r.cli.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = p.HGetAll(ctx, n)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) && !wrongType(err) {
		return nil, fmt.Errorf("redis lookup: HGETALL: %w", err)
	}
	var bad *KeyErrors
	for i, c := range cmds {
		m, err := c.Result()
		if wrongType(err) {
			// This key holds another type than a hash: it fails alone.
			if bad == nil {
				bad = &KeyErrors{Errs: make([]error, len(keys))}
			}
			bad.Errs[i] = fmt.Errorf("redis lookup: HGETALL %s: %w", names[i], err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redis lookup: HGETALL %s: %w", names[i], err)
		}
		if len(m) == 0 {
			continue // no such key (or an empty hash, which Redis deletes)
		}
		rw := make(Row, len(r.cfg.Fields))
		for j, f := range r.cfg.Fields {
			if s, ok := m[f]; ok {
				rw[j] = row.String(s)
			}
		}
		out[i] = []Row{rw}
	}
	if bad != nil {
		return out, bad
	}
	return out, nil
}

// wrongType reports whether err is Redis's answer to a command on a key
// of another type (WRONGTYPE): the key's error, not the batch's.
func wrongType(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "WRONGTYPE")
}

// stringRow reads a string value: a JSON object's members by field name,
// any other value as the first field.
func (r *Redis) stringRow(p *fastjson.Parser, s string) Row {
	rw := make(Row, len(r.cfg.Fields))
	v, err := p.Parse(s)
	// fastjson accepts some text that is not JSON ({"a":.}): an object
	// only when encoding/json agrees.
	if err != nil || v.Type() != fastjson.TypeObject || !json.Valid([]byte(s)) {
		rw[0] = row.String(s)
		return rw
	}
	for j, f := range r.cfg.Fields {
		rw[j] = fromJSON(v.Get(f))
	}
	return rw
}

func fromJSON(v *fastjson.Value) row.Value {
	if v == nil {
		return row.Null()
	}
	switch v.Type() {
	case fastjson.TypeNull:
		return row.Null()
	case fastjson.TypeTrue:
		return row.Bool(true)
	case fastjson.TypeFalse:
		return row.Bool(false)
	case fastjson.TypeString:
		return row.String(string(v.GetStringBytes()))
	case fastjson.TypeNumber:
		if n, err := v.Int64(); err == nil {
			return row.Int(n)
		}
		return row.Float(v.GetFloat64())
	}
	return row.JSON(string(v.MarshalTo(nil)))
}

// Close implements Lookuper.
func (r *Redis) Close() error { return r.cli.Close() }
