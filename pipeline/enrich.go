package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/internal/ttlcache"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/state/codec"
	"github.com/sluicehq/sluice/stream"
)

// The enrich step calls an HTTP service for each record and puts the
// JSON answer into a field (docs/pipeline-spec.md#enrich):
//
//	- enrich:
//	    http:
//	      url: "http://users/api/{user}"
//	      method: GET
//	      headers: {Authorization: "Bearer abc"}
//	      body: {id: user, amount: amount * 100}
//	      timeout: 2s
//	      retries: 3
//	      concurrency: 32
//	      ordered: true
//	      cache: {size: 10000, ttl: 1m}
//	      batch: {size: 50, linger: 5ms}
//	      circuit_breaker: {failures: 10, open_for: 5s}
//	    into: profile
//	    on_error: dead_letter
//
// It runs on stream.AsyncMap (or AsyncMapBatch with batch:): calls in
// flight per subtask are bounded, the task never blocks on them,
// watermarks and barriers pass, and the records in flight are
// checkpointed and called again after a restore.

// EnrichSpec is an enrich step.
type EnrichSpec struct {
	HTTP *EnrichHTTPSpec
	// Into is the field the answer goes into (replaced if it exists).
	Into string
	// OnError is "fail" (the default: a record whose call failed for good
	// fails the job) or "dead_letter" (it goes to the dead letters, and
	// the job goes on).
	OnError string
	Pos     Pos
}

// EnrichHTTPSpec is the http block of an enrich step.
type EnrichHTTPSpec struct {
	// URL may name fields as {field}; their values are escaped.
	URL    string
	Method string
	// Headers may name fields as {field} in their values.
	Headers map[string]string
	// Body is a JSON object of expressions; nil sends no body (GET) or,
	// for other methods, the record's fields as a JSON object.
	Body        []Assign
	Timeout     time.Duration
	Retries     int
	Concurrency int
	Ordered     bool
	// Capacity bounds the records a subtask holds (0: the default of
	// stream.AsyncCapacity).
	Capacity  int
	CacheSize int
	CacheTTL  time.Duration
	// Batched: a batch block was given; the records go BatchSize at a
	// time as a JSON array.
	Batched         bool
	BatchSize       int
	BatchLinger     time.Duration
	BreakerFailures int
	BreakerOpenFor  time.Duration
	Pos             Pos
	// URLPos and HeadersPos place errors about the fields they name.
	URLPos, HeadersPos Pos
}

// enrichOnError values.
const (
	enrichFail       = "fail"
	enrichDeadLetter = "dead_letter"
)

func parseEnrich(e *errs, o *obj) *EnrichSpec {
	if o == nil {
		return nil
	}
	es := &EnrichSpec{Pos: o.pos("")}
	es.Pos.Field = o.path
	if h := o.object("http", "url, method, headers, body, timeout, retries, concurrency, ordered, cache, batch, circuit_breaker"); h != nil {
		es.HTTP = parseEnrichHTTP(e, h)
	} else if !o.has("http") {
		e.at(o.node, o.sub("http"), "is required: the service to call, like {url: \"http://users/api/{user}\"}")
	}
	es.Into = o.reqStr("into", "the field that receives the service's JSON answer")
	if es.Into != "" && !identRe.MatchString(es.Into) {
		e.at(o.get("into"), o.sub("into"), "%q is not a field name (letters, digits and _, not starting with a digit)", es.Into)
	}
	es.OnError = o.enum("on_error", enrichFail, enrichFail, enrichDeadLetter)
	o.done("http", "into", "on_error")
	return es
}

func parseEnrichHTTP(e *errs, o *obj) *EnrichHTTPSpec {
	h := &EnrichHTTPSpec{Pos: o.pos("")}
	h.Pos.Field = o.path
	h.URL = o.reqStr("url", "the service's URL, which may name fields as {field}")
	h.URLPos, h.HeadersPos = o.pos("url"), o.pos("headers")
	if h.URL != "" {
		lits, _, err := parseTemplate(h.URL)
		if err != nil {
			e.at(o.get("url"), o.sub("url"), "%v", err)
		} else if u, err := url.Parse(strings.Join(lits, "x")); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			e.at(o.get("url"), o.sub("url"), "must be an absolute http:// or https:// URL, like http://users:8080/api/{user}")
		}
	}
	parseEnrichBatch(e, o, h)
	defMethod := http.MethodGet
	if h.Batched || o.has("body") {
		defMethod = http.MethodPost
	}
	h.Method = strings.ToUpper(o.str("method", defMethod))
	switch h.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		e.at(o.get("method"), o.sub("method"), "is %q; allowed: GET, POST, PUT, PATCH, DELETE", h.Method)
	}
	if hd := o.object("headers", "name: value; values may name fields as {field}"); hd != nil {
		h.Headers = map[string]string{}
		for _, k := range hd.keys {
			v := hd.get(k)
			if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				e.at(v, hd.sub(k), "must be a string, not %s", describe(v))
				continue
			}
			if _, _, err := parseTemplate(v.Value); err != nil {
				e.at(v, hd.sub(k), "%v", err)
				continue
			}
			h.Headers[k] = v.Value
		}
	}
	if o.has("body") {
		h.Body = parseAssigns(e, o.get("body"), o.sub("body"), "name: expression; the request body is a JSON object of these")
		if h.Method == http.MethodGet && len(h.Body) > 0 {
			e.at(o.get("body"), o.sub("body"), "a GET request has no body: set method: POST (or PUT, PATCH)")
		}
	}
	h.Timeout = o.duration("timeout", 10*time.Second, true)
	h.Retries = int(o.integer("retries", 3, 0, 100))
	h.Concurrency = int(o.integer("concurrency", 16, 1, 10000))
	h.Ordered = o.boolean("ordered", true)
	h.Capacity = int(o.integer("capacity", 0, 0, 1_000_000))
	if c := o.object("cache", "size and ttl"); c != nil {
		h.CacheSize = int(c.integer("size", 10000, 1, 100_000_000))
		h.CacheTTL = c.duration("ttl", 0, true)
		if !c.has("ttl") {
			e.at(c.node, c.sub("ttl"), "is required: how long an answer may be reused, like 1m")
		}
		c.done("size", "ttl")
	}
	if b := o.object("circuit_breaker", "failures and open_for"); b != nil {
		h.BreakerFailures = int(b.integer("failures", 10, 1, 1_000_000))
		h.BreakerOpenFor = b.duration("open_for", 5*time.Second, true)
		b.done("failures", "open_for")
	}
	if h.Batched {
		if _, fields, err := parseTemplate(h.URL); err == nil && len(fields) > 0 {
			e.at(o.get("url"), o.sub("url"), "cannot name fields with batch: one request carries many records; put the fields in body:")
		}
		for k, v := range h.Headers {
			if _, fields, err := parseTemplate(v); err == nil && len(fields) > 0 {
				e.at(o.get("headers"), o.sub("headers")+"."+k, "cannot name fields with batch: one request carries many records")
			}
		}
		if h.Method == http.MethodGet {
			e.at(o.get("method"), o.sub("method"), "batch: sends the records as a JSON array in the body: use POST (or PUT, PATCH)")
		}
	}
	o.done("url", "method", "headers", "body", "timeout", "retries", "concurrency", "ordered", "capacity", "cache", "batch", "circuit_breaker")
	return h
}

// parseEnrichBatch reads the batch block.
func parseEnrichBatch(e *errs, o *obj, h *EnrichHTTPSpec) {
	b := o.object("batch", "size and linger")
	if b == nil {
		return
	}
	h.Batched = true
	h.BatchSize = int(b.integer("size", 0, 1, 100_000))
	if !b.has("size") {
		e.at(b.node, b.sub("size"), "is required: how many records one request carries at most, like 50")
	}
	h.BatchLinger = b.duration("linger", 5*time.Millisecond, false)
	b.done("size", "linger")
}

// enrichPlan is an enrich step bound to field positions.
type enrichPlan struct {
	spec   *EnrichSpec
	stage  string
	into   int
	outLen func() int
	body   []*expression
}

// planEnrich resolves the fields the step names in cur and adds its
// output field.
func planEnrich(e *errs, spec *Spec, st StepSpec, path string, cur *fieldSet) *enrichPlan {
	es := st.Enrich
	if es == nil || es.HTTP == nil || es.Into == "" {
		return nil
	}
	p := &enrichPlan{spec: es, stage: path}
	h := es.HTTP
	if _, fields, err := parseTemplate(h.URL); err == nil {
		resolveKeys(e, h.URLPos, "template", fields, cur)
	}
	names := make([]string, 0, len(h.Headers))
	for k := range h.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, fields, err := parseTemplate(h.Headers[k]); err == nil {
			resolveKeys(e, h.HeadersPos, k, fields, cur)
		}
	}
	for _, a := range h.Body {
		p.body = append(p.body, compileAt(e, a.Pos, a.Expr, cur))
	}
	if es.OnError == enrichDeadLetter && spec.Errors.Tolerance != ToleranceAll {
		e.list = append(e.list, es.Pos.errorf("on_error: dead_letter needs errors: {tolerance: all} (with a dead_letter: sink to keep the failed records), else the first failure stops the pipeline"))
	}
	p.into = cur.add(es.Into)
	cur.kinds[p.into] = row.KindJSON
	f := cur
	p.outLen = func() int { return len(f.names) }
	return p
}

// enrichRun is a built enrich step: the templates bound to the input
// schema, the HTTP client, the cache and its counters.
type enrichRun struct {
	plan    *enrichPlan
	name    string
	in      *row.Schema
	url     *urlTemplate
	headers []enrichHeader
	method  string
	client  *http.Client
	cache   *ttlcache.Cache[string]
	now     func() time.Time // the cache's clock
	hits    atomic.Int64
	misses  atomic.Int64
	// record encodes the whole row as the body (no body: given, not GET).
	record *row.JSONEncoder
}

type enrichHeader struct {
	name string
	tmpl *urlTemplate
}

// urlTemplate is a {field} template whose values are escaped for where
// they fall: path-escaped before a '?', query-escaped after.
type urlTemplate struct {
	parts []tmplPart
	// query[i]: part i is in the query string.
	query []bool
	raw   bool // no escaping (header values)
}

func compileURLTemplate(t string, s *row.Schema, raw bool) (*urlTemplate, error) {
	kt, err := compileTemplate(t, s)
	if err != nil {
		return nil, err
	}
	u := &urlTemplate{parts: kt.parts, raw: raw}
	inQuery := false
	for _, p := range kt.parts {
		u.query = append(u.query, inQuery)
		if p.field < 0 && strings.Contains(p.lit, "?") {
			inQuery = true
		}
	}
	return u, nil
}

func (u *urlTemplate) render(dst []byte, r row.Row) []byte {
	for i, p := range u.parts {
		if p.field < 0 {
			dst = append(dst, p.lit...)
			continue
		}
		v := r.Get(p.field)
		if v.IsNull() {
			continue
		}
		s := v.String()
		switch {
		case u.raw:
			dst = append(dst, s...)
		case u.query[i]:
			dst = append(dst, url.QueryEscape(s)...)
		default:
			dst = append(dst, url.PathEscape(s)...)
		}
	}
	return dst
}

// enrichRequest is one rendered request; its key (method, URL, headers,
// body) is the cache's.
type enrichRequest struct {
	url  string
	hdr  []string // name, value pairs
	body []byte
	key  string
}

func (x *enrichRun) request(r row.Row) (enrichRequest, error) {
	var req enrichRequest
	req.url = string(x.url.render(nil, r))
	for _, h := range x.headers {
		req.hdr = append(req.hdr, h.name, string(h.tmpl.render(nil, r)))
	}
	body, err := x.body(nil, r)
	if err != nil {
		return req, err
	}
	req.body = body
	var k []byte
	k = append(k, x.method...)
	k = append(k, ' ')
	k = append(k, req.url...)
	for _, h := range req.hdr {
		k = append(k, 0)
		k = append(k, h...)
	}
	k = append(k, 0)
	k = append(k, body...)
	req.key = string(k)
	return req, nil
}

// body appends r's request body: the body expressions as a JSON object,
// the record itself for a method with a body and no body:, or nothing.
func (x *enrichRun) body(dst []byte, r row.Row) ([]byte, error) {
	h := x.plan.spec.HTTP
	switch {
	case len(h.Body) > 0:
		dst = append(dst, '{')
		for i, a := range h.Body {
			v, err := x.plan.body[i].eval(r.Vals)
			if err != nil {
				return nil, fmt.Errorf("%s.body.%s: %w", x.plan.stage+".http", a.Name, err)
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = row.AppendQuoted(dst, a.Name)
			dst = append(dst, ':')
			dst = v.AppendJSON(dst)
		}
		return append(dst, '}'), nil
	case x.method != http.MethodGet && x.method != http.MethodDelete:
		return x.record.Append(dst, r), nil
	}
	return dst, nil
}

// errStatus is a non-2xx answer.
type errStatus struct {
	code int
	body string
}

func (e *errStatus) Error() string {
	b := strings.TrimSpace(e.body)
	if len(b) > 200 {
		b = b[:200] + "..."
	}
	if b == "" {
		return fmt.Sprintf("HTTP %d", e.code)
	}
	return fmt.Sprintf("HTTP %d: %s", e.code, b)
}

// maxEnrichAnswer bounds the body of an answer the step reads.
const maxEnrichAnswer = 16 << 20

// do sends a request and returns the answer's body. 5xx, 429 and
// transport errors may be retried; other non-2xx answers are permanent,
// except 404, which answers null (nothing known about this record).
func (x *enrichRun) do(ctx context.Context, req enrichRequest) (string, error) {
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, x.method, req.url, body)
	if err != nil {
		return "", stream.Permanent(err)
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(req.hdr); i += 2 {
		hr.Header.Set(req.hdr[i], req.hdr[i+1])
	}
	resp, err := x.client.Do(hr)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxEnrichAnswer+1))
	if err != nil {
		return "", err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "null", nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return "", &errStatus{code: resp.StatusCode, body: string(b)}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return "", stream.Permanent(&errStatus{code: resp.StatusCode, body: string(b)})
	}
	if len(b) > maxEnrichAnswer {
		return "", stream.Permanent(fmt.Errorf("the answer is larger than %d MiB", maxEnrichAnswer>>20))
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "null", nil
	}
	if !json.Valid(b) {
		return "", stream.Permanent(fmt.Errorf("the answer is not JSON: %.100q", b))
	}
	return string(b), nil
}

// withAnswer returns r with the answer in the into field.
func (x *enrichRun) withAnswer(r row.Row, answer string) row.Row {
	n := max(x.plan.outLen(), len(r.Vals), x.plan.into+1)
	out := make([]row.Value, n)
	copy(out, r.Vals)
	out[x.plan.into] = row.JSON(answer)
	return row.Row{Vals: out, Rest: r.Rest}
}

func (x *enrichRun) one(ctx context.Context, r row.Row) (row.Row, error) {
	req, err := x.request(r)
	if err != nil {
		return r, stream.Permanent(err)
	}
	if x.cache != nil {
		if a, ok := x.cache.Get(req.key); ok {
			x.hits.Add(1)
			return x.withAnswer(r, a), nil
		}
		x.misses.Add(1)
	}
	sent := x.now()
	a, err := x.do(ctx, req)
	if err != nil {
		return r, err
	}
	if x.cache != nil {
		// Stamped when the call went out: an answer is not served more
		// than ttl after the service gave it, however long the call took.
		x.cache.AddAt(req.key, a, sent)
	}
	return x.withAnswer(r, a), nil
}

// batch sends the records as one JSON array (each record's body) and
// expects an array of as many answers, in order. Cached answers are not
// sent.
func (x *enrichRun) batch(ctx context.Context, rs []row.Row) ([]row.Row, error) {
	out := make([]row.Row, len(rs))
	var idx []int
	var keys []string
	body := []byte{'['}
	for i, r := range rs {
		b, err := x.body(nil, r)
		if err != nil {
			return nil, stream.Permanent(err)
		}
		key := string(b)
		if x.cache != nil {
			if a, ok := x.cache.Get(key); ok {
				x.hits.Add(1)
				out[i] = x.withAnswer(r, a)
				continue
			}
			x.misses.Add(1)
		}
		if len(idx) > 0 {
			body = append(body, ',')
		}
		body = append(body, b...)
		idx = append(idx, i)
		keys = append(keys, key)
	}
	if len(idx) == 0 {
		return out, nil
	}
	body = append(body, ']')
	req := enrichRequest{url: string(x.url.render(nil, row.Row{})), body: body}
	for _, h := range x.headers {
		req.hdr = append(req.hdr, h.name, string(h.tmpl.render(nil, row.Row{})))
	}
	sent := x.now()
	a, err := x.do(ctx, req)
	if err != nil {
		return nil, err
	}
	var answers []json.RawMessage
	if err := json.Unmarshal([]byte(a), &answers); err != nil {
		return nil, stream.Permanent(fmt.Errorf("the answer to a batch must be a JSON array: %w", err))
	}
	if len(answers) != len(idx) {
		return nil, stream.Permanent(fmt.Errorf("the answer to a batch of %d records has %d elements", len(idx), len(answers)))
	}
	for j, i := range idx {
		s := string(answers[j])
		if x.cache != nil {
			x.cache.AddAt(keys[j], s, sent)
		}
		out[i] = x.withAnswer(rs[i], s)
	}
	return out, nil
}

// rowCodec writes rows into checkpoints (the records in flight).
var rowCodec = codec.Func(func(dst []byte, r row.Row) []byte { return r.AppendBinary(dst) }, row.DecodeRow)

func buildEnrich(ctx context.Context, rows stream.Stream[row.Row], st stage, dl *deadLetters, pj *Job) (stream.Stream[row.Row], error) {
	p := st.enrich
	h := p.spec.HTTP
	in := st.in()
	x := &enrichRun{plan: p, name: st.name, in: in, method: h.Method, record: row.NewJSONEncoder(in), now: time.Now}
	var err error
	if x.url, err = compileURLTemplate(h.URL, in, false); err != nil {
		return rows, h.Pos.errorf("url: %v", err)
	}
	names := make([]string, 0, len(h.Headers))
	for k := range h.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		t, err := compileURLTemplate(h.Headers[k], in, true)
		if err != nil {
			return rows, h.Pos.errorf("headers.%s: %v", k, err)
		}
		x.headers = append(x.headers, enrichHeader{name: k, tmpl: t})
	}
	x.client = &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConns:        max(100, h.Concurrency*4),
		MaxIdleConnsPerHost: max(2, h.Concurrency*2),
		IdleConnTimeout:     90 * time.Second,
	}}
	if h.CacheSize > 0 {
		c, err := ttlcache.New[string](h.CacheSize, h.CacheTTL, x.now)
		if err != nil {
			return rows, h.Pos.errorf("cache: %v", err)
		}
		x.cache = c
	}
	pj.enrich = append(pj.enrich, x)
	opts := []stream.OpOption{stream.Name(st.name), stream.AsyncConcurrency(h.Concurrency),
		stream.AsyncTimeout(h.Timeout), stream.AsyncRetries(h.Retries, 100*time.Millisecond, 5*time.Second),
		stream.AsyncStateCodec(rowCodec)}
	if h.Capacity > 0 {
		opts = append(opts, stream.AsyncCapacity(h.Capacity))
	}
	if !h.Ordered {
		opts = append(opts, stream.AsyncUnordered())
	}
	if h.BreakerFailures > 0 {
		opts = append(opts, stream.AsyncCircuitBreaker(h.BreakerFailures, h.BreakerOpenFor))
	}
	var tag stream.OutputTag[stream.AsyncFailure[row.Row]]
	if p.spec.OnError == enrichDeadLetter {
		tag = stream.NewOutputTag[stream.AsyncFailure[row.Row]](st.name + ".failed")
		opts = append(opts, stream.AsyncFailuresTo(tag))
	}
	var out stream.Stream[row.Row]
	if h.Batched {
		opts = append(opts, stream.AsyncBatch(h.BatchSize, h.BatchLinger))
		out = stream.AsyncMapBatch(rows, x.batch, opts...)
	} else {
		out = stream.AsyncMap(rows, x.one, opts...)
	}
	if p.spec.OnError == enrichDeadLetter {
		failed := stream.SideOutput(out, tag)
		stream.To(failed, stream.SinkFunc[stream.AsyncFailure[row.Row]](func(ctx context.Context, fs []stream.AsyncFailure[row.Row]) error {
			for _, f := range fs {
				r := f.In
				err := fmt.Errorf("%s: after %d attempt(s): %w", h.URL, f.Attempts, f.Err)
				if ferr := dl.report(ctx, failure{Stage: st.name, Origin: st.name, Offset: -1, Err: err, Row: &r, Schema: in}); ferr != nil {
					return ferr
				}
			}
			return nil
		}), stream.Name(st.name+".dead-letters"))
	}
	return out, nil
}

// Enrich metrics, read from the stream runtime's AsyncMetrics and the
// steps' caches.
var (
	descEnrichInFlight = prometheus.NewDesc("sluice_pipeline_enrich_in_flight", "Calls in flight of an enrich step's subtask.",
		[]string{"pipeline", "operator", "subtask"}, nil)
	descEnrichQueued = prometheus.NewDesc("sluice_pipeline_enrich_queued", "Records held by an enrich step's subtask (waiting, in flight, or answered and waiting for their turn).",
		[]string{"pipeline", "operator", "subtask"}, nil)
	descEnrichCalls = prometheus.NewDesc("sluice_pipeline_enrich_calls_total", "Calls (attempts) of an enrich step's subtask by outcome: ok, error (timeouts included), timeout, retry.",
		[]string{"pipeline", "operator", "subtask", "outcome"}, nil)
	descEnrichFailed = prometheus.NewDesc("sluice_pipeline_enrich_failed_records_total", "Records whose call failed for good.",
		[]string{"pipeline", "operator", "subtask"}, nil)
	descEnrichFull = prometheus.NewDesc("sluice_pipeline_enrich_queue_full_total", "Times an enrich subtask's queue was full and it stopped taking input (backpressure from the service).",
		[]string{"pipeline", "operator", "subtask"}, nil)
	descEnrichBreaker = prometheus.NewDesc("sluice_pipeline_enrich_breaker_state", "Circuit breaker state of an enrich subtask: 0 closed, 1 half-open, 2 open.",
		[]string{"pipeline", "operator", "subtask"}, nil)
	descEnrichCache = prometheus.NewDesc("sluice_pipeline_enrich_cache_total", "Cache lookups of an enrich step by outcome: hit, miss.",
		[]string{"pipeline", "operator", "outcome"}, nil)
	descEnrichLatency = prometheus.NewDesc("sluice_pipeline_enrich_call_seconds", "Duration of the calls (attempts) of an enrich step.",
		[]string{"pipeline", "operator"}, nil)
)

func describeEnrich(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEnrichInFlight, descEnrichQueued, descEnrichCalls, descEnrichFailed, descEnrichFull, descEnrichBreaker, descEnrichCache, descEnrichLatency} {
		ch <- d
	}
}

func collectEnrich(j *Job, ch chan<- prometheus.Metric) {
	if len(j.enrich) == 0 {
		return
	}
	name := j.plan.Spec.Name
	for _, m := range j.job.AsyncMetrics() {
		sub := strconv.Itoa(m.Subtask)
		ch <- prometheus.MustNewConstMetric(descEnrichInFlight, prometheus.GaugeValue, float64(m.InFlight), name, m.Operator, sub)
		ch <- prometheus.MustNewConstMetric(descEnrichQueued, prometheus.GaugeValue, float64(m.Queued), name, m.Operator, sub)
		for _, v := range []struct {
			outcome string
			n       int64
		}{{"ok", m.Calls - m.Errors}, {"error", m.Errors}, {"timeout", m.Timeouts}, {"retry", m.Retries}} {
			ch <- prometheus.MustNewConstMetric(descEnrichCalls, prometheus.CounterValue, float64(v.n), name, m.Operator, sub, v.outcome)
		}
		ch <- prometheus.MustNewConstMetric(descEnrichFailed, prometheus.CounterValue, float64(m.Failed), name, m.Operator, sub)
		ch <- prometheus.MustNewConstMetric(descEnrichFull, prometheus.CounterValue, float64(m.Full), name, m.Operator, sub)
		if m.Breaker != "" {
			st := map[string]float64{"closed": 0, "half-open": 1, "open": 2}[m.Breaker]
			ch <- prometheus.MustNewConstMetric(descEnrichBreaker, prometheus.GaugeValue, st, name, m.Operator, sub)
		}
	}
	for _, x := range j.enrich {
		if x.cache != nil {
			ch <- prometheus.MustNewConstMetric(descEnrichCache, prometheus.CounterValue, float64(x.hits.Load()), name, x.name, "hit")
			ch <- prometheus.MustNewConstMetric(descEnrichCache, prometheus.CounterValue, float64(x.misses.Load()), name, x.name, "miss")
		}
	}
	for _, h := range j.job.Latency() {
		if h.Kind != stream.LatencyAsync {
			continue
		}
		buckets := make(map[float64]uint64, len(h.Bounds))
		var cum uint64
		for i, b := range h.Bounds {
			cum += h.Counts[i]
			buckets[b.Seconds()] = cum
		}
		ch <- prometheus.MustNewConstHistogram(descEnrichLatency, h.Count, h.Sum.Seconds(), buckets, name, h.Operator)
	}
}

// EnrichStats are the cache counters of an enrich step.
type EnrichStats struct {
	Step              string
	CacheHits, Misses int64
	CacheSize         int
	CacheEnabled      bool
}

// EnrichStats returns the cache counters of the pipeline's enrich steps.
func (j *Job) EnrichStats() []EnrichStats {
	out := make([]EnrichStats, 0, len(j.enrich))
	for _, x := range j.enrich {
		s := EnrichStats{Step: x.name, CacheHits: x.hits.Load(), Misses: x.misses.Load(), CacheEnabled: x.cache != nil}
		if x.cache != nil {
			s.CacheSize = x.cache.Len()
		}
		out = append(out, s)
	}
	return out
}

// closeEnrich empties the enrich steps' caches once the job ended and
// closes their idle connections.
func (j *Job) closeEnrich() {
	for _, x := range j.enrich {
		if x.cache != nil {
			x.cache.Purge()
		}
		x.client.CloseIdleConnections()
	}
}

// AsyncMetrics returns the counters of the enrich steps' subtasks (the
// stream runtime's AsyncMetrics).
func (j *Job) AsyncMetrics() []stream.AsyncMetrics { return j.job.AsyncMetrics() }
