package pipeline

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/kafka"
	"github.com/sluicehq/sluice/stream"
)

// ingestPartitions is the ingest topic's partition count when the
// cluster section sets none.
const ingestPartitions = 4

// startIngest runs an instance's HTTP ingest: the spec's http source,
// on this instance, writing every record it accepts into the
// application's ingest topic (as received; the clustered pipeline decodes
// it). It is exactly-once: Kafka transactions committed by checkpoints
// every commit interval, and a request is answered only once its records
// are committed, so an answered request is never lost and a request whose
// answer was lost can be retried by the client (at-least-once from the
// client's side, as with any HTTP ingest).
func (p *Plan) startIngest(ctx context.Context, host *Host, cfg cluster.Config, topic string) (*stream.Job, error) {
	hc := p.Spec.Source.cfg.(*httpSourceConfig)
	bc := &buildCtx{host: host, pipeline: p.Spec.Name, delivery: DeliveryExactlyOnce, exactlyOnce: true, checkpointInterval: cfg.CommitInterval}
	src, err := hc.open(bc)
	if err != nil {
		return nil, openErr(p.Spec.File, p.Spec.Source.Pos.Field, err)
	}
	if host.OnSourceOpen != nil {
		host.OnSourceOpen(p.Spec.Source.Pos.Field, src)
	}
	base := host.DataDir
	if base == "" {
		base = "data"
	}
	dir := filepath.Join(base, "cluster", cfg.ApplicationID, cfg.InstanceID, "ingest-checkpoints")
	env := stream.New(stream.WithParallelism(1), stream.WithLogger(host.logger()),
		stream.WithCheckpointing(dir, cfg.CommitInterval), stream.WithDelivery(stream.ExactlyOnce))
	sink, err := kafka.NewSink(kafka.SinkConfig{
		Brokers:            cfg.Brokers,
		Topic:              topic,
		Transactional:      true,
		TransactionalID:    cfg.ApplicationID + "-" + cfg.InstanceID + "-ingest",
		TransactionTimeout: kafka.DefaultTransactionTimeout,
		Logger:             host.logger(),
		ClientOptions:      cfg.ClientOptions,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: cluster ingest: %w", p.Spec.File, err)
	}
	in := stream.FromSource(env, "http", src, stream.WatermarkStrategy[connector.Message]{})
	stream.To(in, stream.Sink[connector.Message](sink), stream.Name("ingest"))
	job, err := env.Start(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: cluster ingest: %w", p.Spec.File, err)
	}
	return job, nil
}
