package connect

import (
	"context"
	"fmt"

	nethttp "github.com/sluicehq/sluice/connector/http"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// HTTPSource is the 'http' connector's source: rows POSTed as JSON lines
// or a JSON array to the ingest endpoint (connector/http), each object
// read into the table's columns by name. Stop ends the input.
type HTTPSource struct {
	*msgSource
	Ingest *nethttp.Source
}

// Splits implements stream.Source.
func (s *HTTPSource) Splits(ctx context.Context, parallelism int) ([]stream.Split[exec.Change], error) {
	return s.msgSource.Splits(ctx, parallelism)
}

func openHTTPSource(t SourceTable, env Env) (stream.Source[exec.Change], Info, error) {
	if err := noMetadata(t.Columns); err != nil {
		return nil, Info{}, err
	}
	opts := t.Options
	if _, ok := opts["format"]; !ok {
		opts = Options{"format": "json"}
		for k, v := range t.Options {
			opts[k] = v
		}
	}
	f, err := newRowFormat(opts, "format", t.Columns)
	if err != nil {
		return nil, Info{}, err
	}
	cfg := nethttp.Config{Addr: opts["address"], Path: opts["path"], Token: opts["token"], Logger: env.Logger}
	if cfg.Rate, err = optFloat(opts, "rate", 0); err != nil {
		return nil, Info{}, err
	}
	burst, err := optInt(opts, "burst", 0)
	if err != nil {
		return nil, Info{}, err
	}
	buf, err := optInt(opts, "buffer-records", 0)
	if err != nil {
		return nil, Info{}, err
	}
	if burst < 0 || burst > 1<<31-1 || buf < 0 || buf > 1<<30 || cfg.Rate < 0 {
		return nil, Info{}, fmt.Errorf("options 'rate', 'burst' and 'buffer-records' must not be negative")
	}
	cfg.Burst, cfg.BufferRecords = int(burst), int(buf)
	cfg.Delivery = nethttp.AtLeastOnce
	if env.ExactlyOnce {
		cfg.Delivery = nethttp.ExactlyOnce
	}
	inner, err := nethttp.NewSource(cfg)
	if err != nil {
		return nil, Info{}, err
	}
	src := &HTTPSource{
		msgSource: &msgSource{inner: inner, newDecoder: func() msgDecoder { return f.newDecoder() }, ignoreErrors: f.ignoreErrors},
		Ingest:    inner,
	}
	addr := cfg.Addr
	if addr == "" {
		addr = nethttp.DefaultAddr
	}
	return src, Info{Description: "HTTP ingest on " + addr}, nil
}
