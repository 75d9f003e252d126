package connector

// Stats are a connector's own counters, read by the pipeline's metrics
// (sluice_pipeline_connector_*): what it moved, what went wrong, and how
// far behind the outside system says it is.
type Stats struct {
	// Records and Bytes count the messages read (a source) or written
	// and acknowledged by the server (a sink), and their payload bytes.
	Records, Bytes int64
	// Errors counts failed operations against the server (each retried
	// or reported).
	Errors int64
	// Reconnects counts connections re-established after the server went
	// away.
	Reconnects int64
	// Lag is the server's own measure of what is still to be read (a
	// queue's ready messages, a consumer group's lag), or -1 when it has
	// none or it is not known yet.
	Lag int64
}

// StatsReporter is an optional capability of a source or sink: its own
// counters, safe to call from any goroutine at any time.
type StatsReporter interface {
	ConnectorStats() Stats
}
