package pipeline

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/mysqlcdc"
	"github.com/sluicehq/sluice/stream"
)

// --- mysql_cdc ---

type mysqlCDCConfig struct{ cfg mysqlcdc.Config }

func parseMySQLCDC(e *errs, o *obj) sourceConfig {
	c := &mysqlCDCConfig{}
	if dsn := o.str("dsn", ""); dsn != "" {
		for _, k := range []string{"host", "port", "user", "password"} {
			if o.has(k) {
				o.str(k, "")
				e.at(o.get(k), o.sub(k), "set either dsn or host/port/user/password, not both")
			}
		}
		if err := c.cfg.ParseDSN(dsn); err != nil {
			e.at(o.get("dsn"), o.sub("dsn"), "%v", err)
		}
	} else {
		c.cfg.Host = o.str("host", "127.0.0.1")
		c.cfg.Port = uint16(o.integer("port", 3306, 1, 65535))
		c.cfg.User = o.str("user", "root")
		c.cfg.Password = o.str("password", "")
	}
	c.cfg.Tables = o.strList("tables")
	if !o.has("tables") || len(c.cfg.Tables) == 0 {
		e.at(o.node, o.sub("tables"), "is required: the captured tables as db.table, like [test.orders]")
	}
	seen := map[string]bool{}
	for _, t := range c.cfg.Tables {
		db, name, ok := strings.Cut(t, ".")
		switch {
		case !ok || db == "" || name == "" || strings.Contains(name, "."):
			e.at(o.get("tables"), o.sub("tables"), "%q is not db.table (like test.orders)", t)
		case seen[t]:
			e.at(o.get("tables"), o.sub("tables"), "names %s twice", t)
		}
		seen[t] = true
	}
	c.cfg.ServerID = uint32(o.integer("server_id", 0, 1, 1<<32-1))
	switch o.enum("snapshot", "initial", "initial", "never") {
	case "never":
		c.cfg.Snapshot = mysqlcdc.SnapshotNever
	default:
		c.cfg.Snapshot = mysqlcdc.SnapshotInitial
	}
	c.cfg.ChunkRows = int(o.integer("chunk_rows", 0, 1, 1<<24))
	o.done("dsn", "host", "port", "user", "password", "tables", "server_id", "snapshot", "chunk_rows")
	return c
}

func (c *mysqlCDCConfig) open(bc *buildCtx) (stream.Source[connector.Message], error) {
	cfg := c.cfg
	cfg.Name = bc.pipeline
	cfg.Logger = bc.host.logger()
	return mysqlcdc.NewSource(cfg)
}

// A mysql_cdc source's records, bytes, errors and reconnects are its
// connector.Meter, exported as sluice_pipeline_connector_* like every
// messaging connector's (metrics_connectors.go). The meter's lag is a
// count of messages, which the binlog does not have; the lag in seconds
// and the snapshot flag are these two extra gauges.
var (
	descMySQLCDCLag = prometheus.NewDesc("sluice_pipeline_mysql_cdc_lag_seconds", "How far the last binlog event a mysql_cdc source read is behind the server's binlog head, in seconds (0 when caught up).",
		[]string{"pipeline", "source"}, nil)
	descMySQLCDCSnapshot = prometheus.NewDesc("sluice_pipeline_mysql_cdc_snapshot_running", "1 while a mysql_cdc source's initial snapshot runs.",
		[]string{"pipeline", "source"}, nil)
)

func describeMySQLCDC(ch chan<- *prometheus.Desc) {
	ch <- descMySQLCDCLag
	ch <- descMySQLCDCSnapshot
}

func collectMySQLCDC(ch chan<- prometheus.Metric, pipeline, field string, s *mysqlcdc.Source) {
	snap := 0.0
	if s.Snapshotting() {
		snap = 1
	}
	ch <- prometheus.MustNewConstMetric(descMySQLCDCLag, prometheus.GaugeValue, s.LagSeconds(), pipeline, field)
	ch <- prometheus.MustNewConstMetric(descMySQLCDCSnapshot, prometheus.GaugeValue, snap, pipeline, field)
}
