package latbench

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// RelayConfig describes a bare client relay: the floor that any pipeline
// between two topics of the same broker can reach.
type RelayConfig struct {
	Broker   string
	From, To string
}

// RunRelay copies every record of From to the same partition of To until ctx
// ends, with nothing between the two clients: one consumer (the
// benchmark consumer's settings: fetch from the start, read uncommitted),
// one idempotent producer with acks=all and linger 0 (the Kafka sink's
// defaults), PollFetches then Produce of each record, no engine, no
// checkpoints, no offset commits. It is the Relay mode's process (`sluice
// bench relay`): what a pipeline's second trip through the broker costs
// by itself, measured in the same run as the pipeline. A failed produce
// ends the relay with its error.
func RunRelay(ctx context.Context, cfg RelayConfig) error {
	if cfg.Broker == "" || cfg.From == "" || cfg.To == "" {
		return errors.New("relay: broker, from and to are required")
	}
	if cfg.From == cfg.To {
		return fmt.Errorf("relay: from and to are the same topic %q", cfg.From)
	}
	cons, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Broker),
		kgo.ConsumeTopics(cfg.From),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return fmt.Errorf("relay: consumer: %w", err)
	}
	defer cons.Close()
	prod, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Broker),
		kgo.DefaultProduceTopic(cfg.To),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		return fmt.Errorf("relay: producer: %w", err)
	}
	defer prod.Close()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var once sync.Once
	failed := func(r *kgo.Record, err error) {
		if err != nil {
			once.Do(func() { cancel(fmt.Errorf("relay: produce to %s[%d]: %w", cfg.To, r.Partition, err)) })
		}
	}
	for {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return relayEnd(ctx)
		}
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("relay: fetch %s: %w", cfg.From, err)
		}
		fs.EachRecord(func(in *kgo.Record) {
			prod.Produce(ctx, &kgo.Record{Key: in.Key, Value: in.Value, Headers: in.Headers, Partition: in.Partition}, failed)
		})
	}
}

// relayEnd is the relay's result once ctx has ended: nil when it was
// cancelled from outside, the produce failure that cancelled it otherwise.
func relayEnd(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
