package pipeline

import (
	"regexp"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/pgcdc"
	"github.com/sluicehq/sluice/stream"
)

// --- postgres_cdc ---

type pgcdcConfig struct {
	cfg pgcdc.Config
	pos Pos
}

var pgIdentRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func parsePostgresCDC(e *errs, o *obj) sourceConfig {
	c := &pgcdcConfig{pos: Pos{File: e.file, Line: o.node.Line, Column: o.node.Column, Field: o.path}}
	c.cfg.DSN = o.reqStr("dsn", "the connection string, like postgres://replicator@127.0.0.1:5432/shop (a user with REPLICATION)")
	c.cfg.Tables = o.strList("tables")
	if len(c.cfg.Tables) == 0 {
		e.at(o.node, o.sub("tables"), "is required: the tables to capture, like [public.orders, public.customers]")
	}
	seen := map[string]bool{}
	for _, t := range c.cfg.Tables {
		probe := pgcdc.Config{DSN: "x", Tables: []string{t}, Slot: "s", Publication: "p"}
		if err := probe.Validate(); err != nil {
			e.at(o.get("tables"), o.sub("tables"), "%s", strings.TrimPrefix(err.Error(), "postgres_cdc: "))
		}
		if seen[t] {
			e.at(o.get("tables"), o.sub("tables"), "lists %s twice", t)
		}
		seen[t] = true
	}
	c.cfg.Slot = o.str("slot", "")
	c.cfg.Publication = o.str("publication", "")
	for _, k := range []string{"slot", "publication"} {
		if v := o.str(k, ""); v != "" && !pgIdentRe.MatchString(v) {
			e.at(o.get(k), o.sub(k), "%q must be a lower-case identifier of at most 63 letters, digits and _", v)
		}
	}
	snap, err := pgcdc.ParseSnapshot(o.enum("snapshot", "initial", "initial", "never"))
	if err == nil {
		c.cfg.Snapshot = snap
	}
	c.cfg.ChunkRows = int(o.integer("chunk_rows", 0, 1, 1<<24))
	c.cfg.StatusInterval = o.duration("status_interval", 0, true)
	c.cfg.MaxBackoff = o.duration("max_backoff", 0, true)
	o.done("dsn", "tables", "slot", "publication", "snapshot", "chunk_rows", "status_interval", "max_backoff")
	return c
}

// pgcdcName is the default slot and publication name of a pipeline:
// sluice_<name> in lower case, other characters as _.
func pgcdcName(pipeline string) string {
	b := []byte("sluice_" + strings.ToLower(pipeline))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return string(b)
}

func (c *pgcdcConfig) open(bc *buildCtx) (stream.Source[connector.Message], error) {
	cfg := c.cfg
	if cfg.Slot == "" {
		cfg.Slot = pgcdcName(bc.pipeline)
	}
	if cfg.Publication == "" {
		cfg.Publication = pgcdcName(bc.pipeline)
	}
	cfg.Logger = bc.host.logger()
	return pgcdc.NewSource(cfg)
}

// checkCDCCheckpoint refuses a postgres_cdc source without checkpoints:
// its slot's position advances only when a checkpoint completes, so
// without them the server would keep every WAL segment from then on.
func checkCDCCheckpoint(e *errs, spec *Spec) {
	c, ok := spec.Source.cfg.(*pgcdcConfig)
	if !ok || spec.Checkpoint != nil {
		return
	}
	e.list = append(e.list, c.pos.errorf("needs a checkpoint: section (like checkpoint: {interval: 10s}): the replication slot's position advances only when a checkpoint completes, and a restart resumes from the last one; without checkpoints the server would keep all WAL from the slot on"))
}

var (
	descCDCRecords = prometheus.NewDesc("sluice_pipeline_postgres_cdc_records_total", "Change events a postgres_cdc source emitted (snapshot reads included).",
		[]string{"pipeline", "source"}, nil)
	descCDCSnapshot = prometheus.NewDesc("sluice_pipeline_postgres_cdc_snapshot_records_total", "Rows a postgres_cdc source read in its snapshots (op r).",
		[]string{"pipeline", "source"}, nil)
	descCDCBytes = prometheus.NewDesc("sluice_pipeline_postgres_cdc_bytes_total", "Bytes of the JSON change events a postgres_cdc source emitted.",
		[]string{"pipeline", "source"}, nil)
	descCDCReconnects = prometheus.NewDesc("sluice_pipeline_postgres_cdc_reconnects_total", "Replication connections a postgres_cdc source lost and retried.",
		[]string{"pipeline", "source"}, nil)
	descCDCErrors = prometheus.NewDesc("sluice_pipeline_postgres_cdc_errors_total", "Errors of a postgres_cdc source (failed connections included).",
		[]string{"pipeline", "source"}, nil)
	descCDCLag = prometheus.NewDesc("sluice_pipeline_postgres_cdc_slot_lag_bytes", "WAL bytes between the server's WAL end (as last reported) and the slot's confirmed flush LSN.",
		[]string{"pipeline", "source"}, nil)
)

func describeCDC(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCDCRecords, descCDCSnapshot, descCDCBytes, descCDCReconnects, descCDCErrors, descCDCLag} {
		ch <- d
	}
}

// collectCDC reports the job's postgres_cdc sources.
func collectCDC(j *Job, ch chan<- prometheus.Metric) {
	name := j.plan.Spec.Name
	for i, src := range j.sources {
		s, ok := src.(*pgcdc.Source)
		if !ok {
			continue
		}
		field, st := j.srcName[i], s.Stats()
		for _, v := range []struct {
			d *prometheus.Desc
			n int64
		}{{descCDCRecords, st.Records.Load()}, {descCDCSnapshot, st.SnapshotRows.Load()}, {descCDCBytes, st.Bytes.Load()},
			{descCDCReconnects, st.Reconnects.Load()}, {descCDCErrors, st.Errors.Load()}} {
			ch <- prometheus.MustNewConstMetric(v.d, prometheus.CounterValue, float64(v.n), name, field)
		}
		ch <- prometheus.MustNewConstMetric(descCDCLag, prometheus.GaugeValue, float64(s.SlotLagBytes()), name, field)
	}
}
