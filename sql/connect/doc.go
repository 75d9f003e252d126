// Package connect maps the tables of SQL DDL onto Sluice's connectors:
// CREATE TABLE t (...) WITH ('connector' = '...', ...) becomes a
// stream.Source[exec.Change] (OpenSource) or a stream.Sink[exec.Change]
// (OpenSink).
//
// Connectors ('connector' = ...):
//
//	nexmark            the built-in Nexmark generator (the reference's datagen table)
//	filesystem, file   files or a directory of files; format json, csv or parquet
//	kafka              a Kafka topic (Sluice's listener or any cluster), format json or csv
//	upsert-kafka       a compacted changelog topic keyed by the PRIMARY KEY
//	sluice, log        a topic of the embedded log (Env.Log)
//	datagen            random or sequence values, deterministic under 'seed'
//	print, stdout      JSON lines on Env.Stdout, with "op" for updating results
//	blackhole          discards, counts
//	postgres, jdbc     upsert by PRIMARY KEY (delete on -D), append without one
//	http               rows posted to the HTTP ingest endpoint
//
// The nexmark table produces the events of nexmark.Generator split as
// queries.GeneratorSource splits them, so SQL queries see the events the
// hand-written queries see. Its option defaults are nexmark.DefaultConfig's
// (a rate of nexmark.DefaultEventRate where the reference's option
// defaults to 10,000); 'events.num' = 0 is unbounded; 'keep-alive' and
// 'stop-at' are accepted and ignored; rate limiting ('rate.limited',
// 'max-emit-speed' = 'false') and changing rates are refused.
//
// JSON reads a TIMESTAMP from epoch milliseconds or ISO-8601/SQL text and
// writes epoch milliseconds unless 'json.timestamp-format' says 'SQL' or
// 'ISO-8601'. CSV has no header line; an empty cell is NULL and "" the
// empty string; fields with line breaks are quoted and read back whole.
// Sinks write two-phase (files renamed, Kafka and log transactions) when
// Env.ExactlyOnce is set.
//
// Values are held as sql/types' package documentation says (DECIMAL as
// its unscaled int64, TIMESTAMP as epoch milliseconds, DATE as days, ROW
// and ARRAY as JSON text). A table's ROW columns arrive flattened, one
// Column per leaf field with its Path; readers fill each column from its
// path and writers nest the fields back.
//
// AppendJSON is the canonical JSON encoding of a row (the one the Nexmark
// checksums hash): keys are the column names in order, TIMESTAMP as epoch
// milliseconds, DECIMAL with exactly its scale's fraction digits, strings
// escaped as nexmark.AppendJSONString escapes them.
//
// WITH options are checked against each connector's list: an unknown
// connector, option or value is an error naming what is allowed and the
// nearest spelling. AcceptsUpdates tells the planner whether a sink can
// take an updating (retracting) result.
package connect
