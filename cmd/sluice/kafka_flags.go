package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/sluicehq/sluice/logstore"
)

// kafkaFlags are serve's Kafka-listener flags.
type kafkaFlags struct {
	partitions int
}

func registerKafkaFlags(c *cli, fs *flag.FlagSet) *kafkaFlags {
	k := &kafkaFlags{}
	fs.IntVar(&k.partitions, "default-partitions", 1, "partitions of topics created on first use")
	return k
}

func (k *kafkaFlags) defaultPartitions() int32 { return int32(k.partitions) }

// start starts the Kafka listener; the returned function stops it.
func (k *kafkaFlags) start(ctx context.Context, l *logstore.Log, logger *slog.Logger, errc chan<- error) (func(), error) {
	return func() {}, nil
}
