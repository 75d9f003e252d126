package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/observe"
)

// kafkaFlags are serve's Kafka-listener flags.
type kafkaFlags struct {
	cfg        kafka.Config
	partitions int
	maxRequest int
	disabled   bool
}

func registerKafkaFlags(c *cli, fs *flag.FlagSet) *kafkaFlags {
	d := kafka.DefaultConfig()
	k := &kafkaFlags{}
	fs.StringVar(&k.cfg.Addr, "kafka-addr", envOr(c, "SLUICE_KAFKA_ADDR", d.Addr), "Kafka protocol listen address; a non-loopback address needs --allow-unauthenticated (env SLUICE_KAFKA_ADDR)")
	fs.StringVar(&k.cfg.AdvertisedAddr, "kafka-advertised-addr", envOr(c, "SLUICE_KAFKA_ADVERTISED_ADDR", ""), "HOST:PORT that Metadata returns to clients (default: the bound address)")
	fs.BoolVar(&k.cfg.AutoCreateTopics, "auto-create-topics", d.AutoCreateTopics, "create topics on first use by a client")
	fs.IntVar(&k.partitions, "default-partitions", int(d.DefaultPartitions), "partitions of topics created on first use")
	fs.IntVar(&k.maxRequest, "max-request-bytes", int(d.MaxRequestBytes), "largest request frame accepted; larger ones close the connection")
	fs.BoolVar(&k.cfg.AllowUnauthenticated, "allow-unauthenticated", false, "allow a non-loopback --kafka-addr although the listener has no authentication")
	fs.BoolVar(&k.disabled, "no-kafka", false, "do not start the Kafka protocol listener")
	return k
}

func (k *kafkaFlags) defaultPartitions() int32 { return int32(k.partitions) }

// start validates the flags and starts the Kafka listener; the returned
// function stops it. Listener errors are sent on errc.
// The listener's metrics go to reg, and its consumer-offset store to obs.
func (k *kafkaFlags) start(ctx context.Context, l *logstore.Log, logger *slog.Logger, reg prometheus.Registerer, obs *observe.Observer, errc chan<- error) (func(), error) {
	if k.disabled {
		return func() {}, nil
	}
	cfg := k.cfg
	cfg.DefaultPartitions = int32(k.partitions)
	cfg.MaxRequestBytes = int32(min(k.maxRequest, 1<<30))
	cfg.Registerer = reg
	if k.partitions < 1 {
		return nil, usagef("--default-partitions must be at least 1")
	}
	if err := cfg.Validate(); err != nil {
		if errors.Is(err, kafka.ErrNotLoopback) {
			return nil, usagef("%v", err)
		}
		return nil, usagef("kafka: %v", err)
	}
	srv, err := kafka.New(l, cfg, logger)
	if err != nil {
		return nil, err
	}
	obs.SetOffsets(srv.Offsets())
	obs.SetGroupSource(liveGroups(srv))
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		srv.Close()
		return nil, err
	}
	logger.Info("kafka listener started", "addr", ln.Addr().String(), "auto_create_topics", cfg.AutoCreateTopics,
		"default_partitions", strconv.Itoa(k.partitions))
	go func() {
		if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, kafka.ErrServerClosed) {
			errc <- err
		}
	}()
	return func() { srv.Close() }, nil
}
