package connect

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/kafka"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

func kafkaBrokers(opts Options, env Env) ([]string, error) {
	if v := opts["properties.bootstrap.servers"]; v != "" {
		var out []string
		for _, b := range strings.Split(v, ",") {
			if b = strings.TrimSpace(b); b != "" {
				out = append(out, b)
			}
		}
		return out, nil
	}
	if len(env.Brokers) > 0 {
		return env.Brokers, nil
	}
	return nil, fmt.Errorf("option 'properties.bootstrap.servers' is required (host:port[,host:port...])")
}

// valueFormatKey returns the option naming the value format: 'format'
// or 'value.format'.
func valueFormatKey(opts Options) (string, error) {
	_, f := opts["format"]
	_, vf := opts["value.format"]
	switch {
	case f && vf:
		return "", fmt.Errorf("options 'format' and 'value.format' both set: keep one")
	case vf:
		return "value.format", nil
	}
	return "format", nil
}

// keyColumns resolves 'key.fields' ('a;b') into column indexes.
func keyColumns(cols []Column, spec string) ([]int, error) {
	var idx []int
	for _, name := range strings.Split(spec, ";") {
		name = strings.TrimSpace(name)
		found := -1
		for i, c := range cols {
			if c.Name == name && c.Metadata == "" {
				found = i
			}
		}
		if found < 0 {
			names := make([]string, len(cols))
			for i, c := range cols {
				names[i] = c.Name
			}
			return nil, fmt.Errorf("option 'key.fields': no column '%s'%s (columns: %s)", name, didYouMean(name, names), strings.Join(names, ", "))
		}
		idx = append(idx, found)
	}
	return idx, nil
}

func pick[T any](s []T, idx []int) []T {
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = s[j]
	}
	return out
}

func openKafkaSource(t SourceTable, env Env, upsert bool) (stream.Source[exec.Change], Info, error) {
	topic := t.Options["topic"]
	if topic == "" {
		return nil, Info{}, fmt.Errorf("option 'topic' is required")
	}
	brokers, err := kafkaBrokers(t.Options, env)
	if err != nil {
		return nil, Info{}, err
	}
	if err := checkMetadata(t.Columns, "timestamp", "offset", "partition", "topic"); err != nil {
		return nil, Info{}, err
	}
	cfg := kafka.SourceConfig{Brokers: brokers, Topic: topic, ClientOptions: env.KafkaOptions}
	group := t.Options["properties.group.id"]
	mode := "earliest-offset"
	if !upsert {
		def := "earliest-offset"
		if group != "" {
			def = "group-offsets"
		}
		if mode, err = optEnum(t.Options, "scan.startup.mode", def, "earliest-offset", "latest-offset", "group-offsets"); err != nil {
			return nil, Info{}, err
		}
	}
	switch mode {
	case "latest-offset":
		cfg.Start = kafka.StartLatest
	case "group-offsets":
		if group == "" {
			return nil, Info{}, fmt.Errorf("'scan.startup.mode' = 'group-offsets' needs 'properties.group.id'")
		}
		cfg.Group = group // committed offsets, earliest where none
	}
	bounded, err := optEnum(t.Options, "scan.bounded.mode", "unbounded", "unbounded", "latest-offset")
	if err != nil {
		return nil, Info{}, err
	}
	cfg.Bounded = bounded == "latest-offset"
	inner, err := kafka.NewSource(cfg)
	if err != nil {
		return nil, Info{}, err
	}
	desc := fmt.Sprintf("kafka topic %s at %s from %s", topic, strings.Join(brokers, ","), mode)
	if upsert {
		if len(t.PrimaryKey) == 0 {
			return nil, Info{}, fmt.Errorf("an 'upsert-kafka' table needs a PRIMARY KEY (the message key): declare PRIMARY KEY (...) NOT ENFORCED")
		}
		vf, err := newRowFormat(t.Options, "value.format", t.Columns)
		if err != nil {
			return nil, Info{}, err
		}
		keyCols := pick(t.Columns, t.PrimaryKey)
		kf, err := newRowFormat(t.Options, "key.format", keyCols)
		if err != nil {
			return nil, Info{}, err
		}
		src := &msgSource{inner: inner, ignoreErrors: vf.ignoreErrors, newDecoder: func() msgDecoder {
			return &upsertDecoder{val: vf.newDecoder(), key: kf.newDecoder(), keyIdx: t.PrimaryKey, width: len(t.Columns)}
		}}
		return src, Info{Bounded: cfg.Bounded, Upsert: true, Key: t.PrimaryKey, Description: "upsert " + desc}, nil
	}
	fk, err := valueFormatKey(t.Options)
	if err != nil {
		return nil, Info{}, err
	}
	vcols := t.Columns
	var keyIdx []int
	var kf *rowFormat
	if spec := t.Options["key.fields"]; spec != "" {
		if keyIdx, err = keyColumns(t.Columns, spec); err != nil {
			return nil, Info{}, err
		}
		if kf, err = newRowFormat(t.Options, "key.format", pick(t.Columns, keyIdx)); err != nil {
			return nil, Info{}, err
		}
	}
	include, err := optEnum(t.Options, "value.fields-include", "ALL", "ALL", "EXCEPT_KEY")
	if err != nil {
		return nil, Info{}, err
	}
	if include == "EXCEPT_KEY" {
		if kf == nil {
			return nil, Info{}, fmt.Errorf("'value.fields-include' = 'EXCEPT_KEY' needs 'key.fields' and 'key.format'")
		}
		// The value holds the other columns; key columns are read from
		// the key. Mark them as metadata-like by blanking their paths.
		vcols = withoutKey(t.Columns, keyIdx)
	}
	vf, err := newRowFormat(t.Options, fk, vcols)
	if err != nil {
		return nil, Info{}, err
	}
	src := &msgSource{inner: inner, ignoreErrors: vf.ignoreErrors, newDecoder: func() msgDecoder {
		d := &kafkaDecoder{val: vf.newDecoder(), keyIdx: keyIdx, fromKey: include == "EXCEPT_KEY"}
		if kf != nil && d.fromKey {
			d.key = kf.newDecoder()
		}
		return d
	}}
	return src, Info{Bounded: cfg.Bounded, Description: desc}, nil
}

// withoutKey returns cols with the key columns turned into metadata
// columns of an internal key, so value decoders skip them.
func withoutKey(cols []Column, keyIdx []int) []Column {
	out := append([]Column(nil), cols...)
	for _, i := range keyIdx {
		out[i].Metadata = keyMetadata
	}
	return out
}

// keyMetadata marks a column filled from the message key.
const keyMetadata = "\x00key"

type kafkaDecoder struct {
	val     *rowDecoder
	key     *rowDecoder
	keyIdx  []int
	fromKey bool
}

func (d *kafkaDecoder) decodeMsg(m *connector.Message) (exec.Change, bool, error) {
	c, ok, err := d.val.decodeMsg(m)
	if err != nil || !ok || d.key == nil {
		return c, ok, err
	}
	if len(m.Key) == 0 {
		return c, true, nil
	}
	kv, err := d.key.decodeValue(m.Key)
	if err != nil {
		return exec.Change{}, false, fmt.Errorf("key: %w", err)
	}
	for i, j := range d.keyIdx {
		c.Vals[j] = kv[i]
	}
	return c, true, nil
}

// upsertDecoder reads an upsert-kafka topic: a value is an upsert (+U) of
// its row, a tombstone a delete (-D) of the key, the other columns null.
type upsertDecoder struct {
	val, key *rowDecoder
	keyIdx   []int
	width    int
}

func (d *upsertDecoder) decodeMsg(m *connector.Message) (exec.Change, bool, error) {
	if m.Value != nil {
		c, ok, err := d.val.decodeMsg(m)
		c.Op = exec.UpdateAfter
		return c, ok, err
	}
	if len(m.Key) == 0 {
		return exec.Change{}, false, nil // a tombstone without a key deletes nothing
	}
	kv, err := d.key.decodeValue(m.Key)
	if err != nil {
		return exec.Change{}, false, fmt.Errorf("key: %w", err)
	}
	vals := make([]row.Value, d.width)
	for i, j := range d.keyIdx {
		vals[j] = kv[i]
	}
	return exec.Change{Op: exec.Delete, Vals: vals}, true, nil
}

func openKafkaSink(t SinkTable, env Env, upsert bool) (stream.Sink[exec.Change], error) {
	topic := t.Options["topic"]
	if topic == "" {
		return nil, fmt.Errorf("option 'topic' is required")
	}
	brokers, err := kafkaBrokers(t.Options, env)
	if err != nil {
		return nil, err
	}
	if err := noMetadata(t.Columns); err != nil {
		return nil, err
	}
	cfg := kafka.SinkConfig{Brokers: brokers, Topic: topic, ClientOptions: env.KafkaOptions, Logger: env.Logger}
	guarantee, err := optEnum(t.Options, "sink.delivery-guarantee", "at-least-once", "at-least-once", "exactly-once", "none")
	if err != nil {
		return nil, err
	}
	if guarantee == "exactly-once" {
		if !env.ExactlyOnce {
			return nil, fmt.Errorf("'sink.delivery-guarantee' = 'exactly-once' needs checkpointing: run the job with exactly-once checkpoints")
		}
		cfg.Transactional = true
		cfg.TransactionalID = t.Options["sink.transactional-id-prefix"]
	}
	if _, err := optEnum(t.Options, "sink.partitioner", "default", "default", "fixed", "round-robin"); err != nil {
		return nil, err
	}
	var keyIdx []int
	var kf, vf *rowFormat
	if upsert {
		if len(t.PrimaryKey) == 0 {
			return nil, fmt.Errorf("an 'upsert-kafka' table needs a PRIMARY KEY (the message key): declare PRIMARY KEY (...) NOT ENFORCED")
		}
		keyIdx = t.PrimaryKey
		if kf, err = newRowFormat(t.Options, "key.format", pick(t.Columns, keyIdx)); err != nil {
			return nil, err
		}
		if vf, err = newRowFormat(t.Options, "value.format", t.Columns); err != nil {
			return nil, err
		}
	} else {
		fk, err := valueFormatKey(t.Options)
		if err != nil {
			return nil, err
		}
		if vf, err = newRowFormat(t.Options, fk, t.Columns); err != nil {
			return nil, err
		}
		if spec := t.Options["key.fields"]; spec != "" {
			if keyIdx, err = keyColumns(t.Columns, spec); err != nil {
				return nil, err
			}
			if kf, err = newRowFormat(t.Options, "key.format", pick(t.Columns, keyIdx)); err != nil {
				return nil, err
			}
		}
	}
	inner, err := kafka.NewSink(cfg)
	if err != nil {
		return nil, err
	}
	return &msgSink{inner: inner, newEncoder: func() msgEncoder {
		e := &kafkaEncoder{val: vf.newEncoder(false), keyIdx: keyIdx, upsert: upsert}
		if kf != nil {
			e.key = kf.newEncoder(false)
		}
		return e
	}}, nil
}

type kafkaEncoder struct {
	val, key *rowEncoder
	keyIdx   []int
	upsert   bool
	keyVals  []row.Value
}

func (e *kafkaEncoder) encodeMsg(buf []byte, c exec.Change) ([]byte, int, bool, bool, bool) {
	if e.upsert && c.Op == exec.UpdateBefore {
		return buf, 0, false, false, false // the +U that follows replaces it
	}
	start := len(buf)
	keyLen := 0
	if e.key != nil {
		e.keyVals = e.keyVals[:0]
		for _, j := range e.keyIdx {
			e.keyVals = append(e.keyVals, c.Vals[j])
		}
		buf = e.key.appendRow(buf, exec.Change{Op: exec.Insert, Vals: e.keyVals})
		keyLen = len(buf) - start
	}
	if e.upsert && c.Op == exec.Delete {
		return buf, keyLen, true, false, true // tombstone
	}
	buf = e.val.appendRow(buf, exec.Change{Op: exec.Insert, Vals: c.Vals})
	return buf, keyLen, e.key != nil, true, true
}
