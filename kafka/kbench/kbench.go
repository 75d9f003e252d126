package kbench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/internal/kcodec"
	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config describes one benchmark run. Zero fields take the defaults named
// on each.
type Config struct {
	// Broker is an existing Kafka-compatible server to measure. Empty (the
	// default) starts Sluice's listener in-process on a log in DataDir.
	Broker string
	// DataDir is the log directory of the in-process server. Empty means a
	// temporary directory, removed afterwards.
	DataDir string
	// Fsync is the in-process log's fsync policy. Default always (group
	// commit).
	Fsync logstore.FsyncPolicy
	// Topic to write; default "kbench-<unix nanos>" (created with
	// Partitions partitions and TopicConfigs).
	Topic string
	// TopicConfigs are the Kafka topic configs the topic is created with
	// (for example cleanup.policy=compact); nil = the server's defaults.
	TopicConfigs map[string]*string
	// Partitions of the topic. Default 4.
	Partitions int32
	// Records to produce. Default 1,000,000 (unless Duration is set).
	Records int
	// Duration, when positive, bounds production by time instead: records
	// are produced until it has passed (or Records, if also set, are
	// produced), then the run waits for every acknowledgement.
	Duration time.Duration
	// RecordSize is the value size in bytes. Default 100.
	RecordSize int
	// Keys, when positive, gives the records keys: record i carries
	// key number i mod Keys (KeyFor), so every key is overwritten again and
	// again, as in a compacted topic. 0 (the default): no keys.
	Keys int
	// Linger is the producer's linger. Default 0: a partition's batch
	// goes out as soon as the client may send another request (up to 5
	// in flight per connection with idempotence), so batches grow with the
	// load instead of waiting for a timer (Go timers on Linux fire with
	// about 1 ms of granularity, so a 100µs linger behaves like 1 ms).
	Linger time.Duration
	// BatchBytes is the producer's maximum batch size. Default 1 MiB.
	BatchBytes int32
	// BufferedRecords is how many records the producer may hold before
	// Produce blocks (kgo.MaxBufferedRecords). Default 10,000, franz-go's
	// own default. A deeper buffer lets an unlimited run build larger
	// batches, for a higher maximum at tens of milliseconds of latency.
	BufferedRecords int
	// Rate limits production to this many records/s; 0 (the default)
	// produces as fast as possible. Latency percentiles are only meaningful
	// below the maximum rate.
	Rate int
	// Compression codec name: none (default), gzip, snappy, lz4, zstd.
	Compression string
	// SkipConsume skips the consume phase.
	SkipConsume bool
	// Security is how clients connect (default PLAINTEXT); the in-process
	// server then has one listener of that protocol (ServerConfig.Security).
	Security Security
}

// Result is the outcome of a run.
type Result struct {
	Config          Config
	Produced        int
	ProduceDuration time.Duration
	ProducedBytes   int64   // key and value bytes produced
	ProduceRate     float64 // records/s
	ProduceMBps     float64 // key and value bytes, MB = 1e6 bytes
	// Produce latencies, from Produce to the acknowledgement: of every
	// record with a Rate, of every clockEvery-th record (by sequence
	// number) without one.
	LatencyP50      time.Duration
	LatencyP99      time.Duration
	LatencyMax      time.Duration
	Consumed        int
	ConsumeDuration time.Duration
	ConsumeRate     float64
	ConsumeMBps     float64
}

// String renders the result on a few lines.
func (r Result) String() string {
	c := r.Config
	keys := ""
	if c.Keys > 0 {
		keys = fmt.Sprintf(" over %d keys", c.Keys)
	}
	s := fmt.Sprintf("kafka bench: %d records of %d B%s, %d partitions, acks=-1, linger %v, batch %d B, buffer %d records, compression %s, rate %s, %s\n",
		r.Produced, c.RecordSize, keys, c.Partitions, c.Linger, c.BatchBytes, c.BufferedRecords, c.Compression, rateString(c.Rate), c.Security.describe())
	s += fmt.Sprintf("  produce: %.0f records/s, %.1f MB/s, latency p50 %v p99 %v max %v (%v)\n",
		r.ProduceRate, r.ProduceMBps, r.LatencyP50.Round(time.Microsecond), r.LatencyP99.Round(time.Microsecond), r.LatencyMax.Round(time.Microsecond), r.ProduceDuration.Round(time.Millisecond))
	if r.Consumed > 0 {
		s += fmt.Sprintf("  consume: %.0f records/s, %.1f MB/s (%v)\n", r.ConsumeRate, r.ConsumeMBps, r.ConsumeDuration.Round(time.Millisecond))
	}
	return s
}

func rateString(r int) string {
	if r <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%d/s", r)
}

func (c Config) withDefaults() Config {
	if c.Partitions <= 0 {
		c.Partitions = 4
	}
	if c.Records <= 0 && c.Duration <= 0 {
		c.Records = 1_000_000
	}
	if c.RecordSize <= 0 {
		c.RecordSize = 100
	}
	if c.Linger < 0 {
		c.Linger = 0
	}
	if c.BufferedRecords <= 0 {
		c.BufferedRecords = 10_000
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	if c.Compression == "" {
		c.Compression = "none"
	}
	if c.Topic == "" {
		c.Topic = fmt.Sprintf("kbench-%d", time.Now().UnixNano())
	}
	c.Security = c.Security.withDefaults()
	return c
}

// Run performs one benchmark run.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	res := Result{Config: cfg}
	cc, err := kcodec.Parse(cfg.Compression)
	if err != nil {
		return res, err
	}
	if err := cfg.Security.validate(); err != nil {
		return res, err
	}
	broker := cfg.Broker
	if broker == "" {
		srv, err := StartServer(ServerConfig{DataDir: cfg.DataDir, Fsync: cfg.Fsync, Security: cfg.Security})
		if err != nil {
			return res, err
		}
		defer srv.Close()
		broker, cfg.Security = srv.Addr, srv.Security
	}
	if err := CreateTopic(ctx, broker, cfg); err != nil {
		return res, err
	}
	if err := produce(ctx, broker, cfg, cc, &res); err != nil {
		return res, err
	}
	if !cfg.SkipConsume {
		if err := consume(ctx, broker, cfg, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// CreateTopic creates cfg.Topic on broker with cfg.Partitions partitions
// (replication factor 1) and cfg.TopicConfigs, through the Kafka protocol,
// connecting with cfg.Security.
func CreateTopic(ctx context.Context, broker string, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.Security.validate(); err != nil {
		return err
	}
	adm, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(broker)}, cfg.Security.ClientOptions()...)...)
	if err != nil {
		return err
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, cfg.Partitions, 1, cfg.TopicConfigs, cfg.Topic); err != nil {
		return fmt.Errorf("creating %s: %w", cfg.Topic, err)
	}
	return nil
}

// Produce produces into cfg.Topic on broker (the topic must exist) as
// configured, connecting with cfg.Security, and reports the produce half
// of a Result.
func Produce(ctx context.Context, broker string, cfg Config) (Result, error) {
	if cfg.Topic == "" {
		return Result{}, errors.New("kbench: Produce needs a topic")
	}
	cfg = cfg.withDefaults()
	res := Result{Config: cfg}
	if err := cfg.Security.validate(); err != nil {
		return res, err
	}
	cc, err := kcodec.Parse(cfg.Compression)
	if err != nil {
		return res, err
	}
	err = produce(ctx, broker, cfg, cc, &res)
	return res, err
}

// KeyFor is the key of key number i in a run with Keys set.
func KeyFor(i int) []byte { return fmt.Appendf(nil, "key-%012d", i) }

// ProducerOptions returns the franz-go options of the benchmark producer:
// idempotent, acks=-1, writing to topic on broker with the given linger,
// maximum batch bytes, compression and buffer depth.
func ProducerOptions(broker, topic string, linger time.Duration, batchBytes int32, cc kgo.CompressionCodec, bufferedRecords int) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(broker),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(linger),
		kgo.ProducerBatchMaxBytes(batchBytes),
		kgo.ProducerBatchCompression(cc),
		kgo.MaxBufferedRecords(bufferedRecords),
	}
}

// sampleKey marks the context of the records whose latency an unlimited
// run measures.
type sampleKey struct{}

// recycleGroup is how many acknowledged records go back to the producing
// loop at a time.
const recycleGroup = 256

// clockEvery is how many records an unlimited run sends per clock read.
const clockEvery = 16

func produce(ctx context.Context, broker string, cfg Config, cc kgo.CompressionCodec, res *Result) error {
	cl, err := kgo.NewClient(append(ProducerOptions(broker, cfg.Topic, cfg.Linger, cfg.BatchBytes, cc, cfg.BufferedRecords), cfg.Security.ClientOptions()...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	value := make([]byte, cfg.RecordSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	keys := make([][]byte, cfg.Keys)
	for i := range keys {
		keys[i] = KeyFor(i)
	}
	// Latencies: every record's, counted in a histogram (latency.go).
	// franz-go calls promises one at a time, so the promise records
	// without a lock; the producing loop reads lat only after every
	// promise ran.
	var lat latHist
	var failed atomic.Int64
	var keyBytes int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Second / time.Duration(cfg.Rate)
	}
	// The load generator should cost little next to what it measures: a
	// record carries its send time as its timestamp (which the client
	// would otherwise read the clock for), so one promise serves every
	// record and sending reads the clock once. Unlimited, sending reads
	// the clock once per clockEvery records, and only those records
	// (sampled, one in clockEvery by sequence number, wherever batches
	// begin) are timed: their promise reads the clock again. Acknowledged records are
	// reused (franz-go touches a record no more once its promise has
	// returned): the promise hands them back to the producing loop in
	// groups of recycleGroup, so that a record costs no allocation and
	// no garbage collection.
	free := make(chan []*kgo.Record, cfg.BufferedRecords/recycleGroup+2)
	acked := make([]*kgo.Record, 0, recycleGroup)
	sampled := context.WithValue(ctx, sampleKey{}, true)
	promise := func(r *kgo.Record, err error) {
		if interval > 0 || r.Context == sampled {
			lat.add(time.Since(r.Timestamp))
		}
		acked = append(acked, r)
		if len(acked) == recycleGroup {
			select {
			case free <- acked:
				acked = make([]*kgo.Record, 0, recycleGroup)
			default:
				acked = acked[:0]
			}
		}
		if err != nil {
			failed.Add(1)
			errOnce.Do(func() { firstErr = err })
		}
		wg.Done()
	}
	start := time.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	sent := 0
	var now time.Time
	var reuse []*kgo.Record // acknowledged records taken from free
	for ; cfg.Records <= 0 || sent < cfg.Records; sent++ {
		// Unlimited, the clock is read once per clockEvery records (a
		// clock read costs as much as a tenth of a record's production
		// on some VMs); those records share a send time that is off by
		// the few microseconds it takes to produce them.
		if interval > 0 || sent%clockEvery == 0 {
			now = time.Now()
		}
		if !deadline.IsZero() && !now.Before(deadline) {
			break
		}
		if interval > 0 {
			if d := start.Add(time.Duration(sent) * interval).Sub(now); d > 0 {
				time.Sleep(d)
				now = time.Now()
			}
		}
		if len(reuse) == 0 {
			select {
			case reuse = <-free:
			default:
			}
		}
		var rctx context.Context // nil: franz-go sets Produce's
		if interval == 0 && sent%clockEvery == 0 {
			rctx = sampled // sent with an exact clock reading: timed
		}
		var r *kgo.Record
		if n := len(reuse); n > 0 {
			r = reuse[n-1]
			reuse = reuse[:n-1]
			*r = kgo.Record{Value: value, Timestamp: now, Context: rctx}
		} else {
			r = &kgo.Record{Value: value, Timestamp: now, Context: rctx}
		}
		if len(keys) > 0 {
			r.Key = keys[sent%len(keys)]
			keyBytes += int64(len(r.Key))
		}
		wg.Add(1)
		cl.Produce(ctx, r, promise)
	}
	wg.Wait()
	res.ProduceDuration = time.Since(start)
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d records failed: %w", n, sent, firstErr)
	}
	if sent == 0 {
		return errors.New("no record produced")
	}
	res.Produced = sent
	res.ProducedBytes = int64(sent)*int64(cfg.RecordSize) + keyBytes
	secs := res.ProduceDuration.Seconds()
	res.ProduceRate = float64(sent) / secs
	res.ProduceMBps = float64(res.ProducedBytes) / secs / 1e6
	res.LatencyP50 = lat.quantile(0.5)
	res.LatencyP99 = lat.quantile(0.99)
	res.LatencyMax = lat.quantile(1)
	return nil
}

func consume(ctx context.Context, broker string, cfg Config, res *Result) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(broker),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64 << 20),
		kgo.FetchMaxPartitionBytes(16 << 20),
	}, cfg.Security.ClientOptions()...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	n := 0
	for n < res.Produced {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("consumed %d of %d records: %w", n, res.Produced, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		n += fs.NumRecords()
	}
	res.ConsumeDuration = time.Since(start)
	res.Consumed = n
	secs := res.ConsumeDuration.Seconds()
	res.ConsumeRate = float64(n) / secs
	perRecord := cfg.RecordSize
	if cfg.Keys > 0 {
		perRecord += len(KeyFor(0))
	}
	res.ConsumeMBps = float64(n) * float64(perRecord) / secs / 1e6
	return nil
}
