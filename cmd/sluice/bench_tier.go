package main

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/internal/netutil"
)

// benchTier measures tiered storage through the Kafka protocol: a
// `sluice serve --remote-storage` child process on an S3-compatible server
// (gofakes3, in memory, served over loopback HTTP by this process), and
// franz-go clients in this process. docs/benchmarks-tier.md has the
// figures.
func benchTier(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice bench tier", "[--mb 256] [--record-size 1024] [--segment-bytes 8388608] [--rounds 2] [--dir DIR] [--profile-dir DIR]")
	mb := fs.Int("mb", 256, "megabytes produced per topic and round")
	size := fs.Int("record-size", 1024, "bytes per record value (random, incompressible)")
	segSize := byteSize(8 << 20)
	sizeVar(fs, &segSize, "segment-bytes", "segment.bytes of the topics, like 8MiB")
	rounds := fs.Int("rounds", 2, "rounds of each measurement")
	dir := fs.String("dir", "", "data directory of the server (default: a temporary directory)")
	profDir := fs.String("profile-dir", "", "write CPU profiles here: serve-consume.pprof (the server during the consume rounds) and s3-server.pprof (the S3 server, whole run)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *mb < 1 || *size < 1 || *rounds < 1 || segSize < 1<<20 {
		return usagef("takes no arguments; --mb, --record-size and --rounds must be positive, --segment-bytes at least 1 MiB")
	}
	segBytes := (*int64)(&segSize)
	if *dir == "" {
		d, err := os.MkdirTemp("", "sluice-bench-tier-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	// The S3 server: a third process, so that neither the client nor the
	// log server pays for it.
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	s3addr := freePort()
	s3args := []string{"bench", "s3-server", "--addr", s3addr, "--bucket", "bench"}
	if *profDir != "" {
		if err := os.MkdirAll(*profDir, 0o755); err != nil {
			return err
		}
		s3args = append(s3args, "--cpuprofile", filepath.Join(*profDir, "s3-server.pprof"))
	}
	s3cmd := exec.Command(exe, s3args...)
	s3cmd.Stderr = c.stderr
	if err := s3cmd.Start(); err != nil {
		return err
	}
	// SIGTERM, so that its profile is written.
	defer func() { s3cmd.Process.Signal(syscall.SIGTERM); s3cmd.Wait() }()
	if err := waitListening(s3addr); err != nil {
		return fmt.Errorf("s3-server: %w", err)
	}
	srv := &tierBenchServer{dir: *dir, s3: "http://" + s3addr, stderr: c.stderr}
	if err := srv.start(); err != nil {
		return err
	}
	defer srv.stop()
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.kafka))
	if err != nil {
		return err
	}
	adm := kadm.NewClient(cl)
	seg := strconv.FormatInt(*segBytes, 10)
	local := strconv.FormatInt(2**segBytes, 10)
	on := map[string]*string{"segment.bytes": &seg, "remote.storage.enable": ptr("true"), "local.retention.bytes": &local}
	off := map[string]*string{"segment.bytes": &seg}
	for name, cfg := range map[string]map[string]*string{"tier-on": on, "tier-off": off, "tier-backlog": off} {
		if _, err := adm.CreateTopic(ctx, 1, 1, cfg, name); err != nil {
			cl.Close()
			return fmt.Errorf("create %s: %w", name, err)
		}
	}
	cl.Close()
	out := c.stdout
	fmt.Fprintf(out, "tiered storage benchmark: %d MB per topic and round, %d B records, %s segments, server %s and S3 server (gofakes3 in memory, loopback HTTP) as separate processes\n",
		*mb, *size, humanBytes(*segBytes), srv.kafka)
	value := make([]byte, *size)
	crand.Read(value)
	records := *mb << 20 / *size
	// Produce with tiering on and off, alternating.
	for r := 0; r < *rounds; r++ {
		for _, topic := range []string{"tier-off", "tier-on"} {
			cpu0, _ := srv.metric("process_cpu_seconds_total")
			d, err := benchProduce(ctx, srv.kafka, topic, value, records)
			if err != nil {
				return err
			}
			cpu1, _ := srv.metric("process_cpu_seconds_total")
			gb := float64(records**size) / 1e9
			fmt.Fprintf(out, "produce round %d %-9s %8.1f MB/s, server CPU %.2f s/GB\n", r+1, topic, gb*1e3/d.Seconds(), (cpu1-cpu0)/gb)
		}
	}
	// Upload throughput: a backlog uploaded at once when remote storage is
	// turned on for a topic that has data.
	if _, err := benchProduce(ctx, srv.kafka, "tier-backlog", value, records); err != nil {
		return err
	}
	startUp, err := srv.metric("sluice_tier_uploaded_bytes_total")
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := srv.alter(ctx, "tier-backlog", "remote.storage.enable", "true"); err != nil {
		return err
	}
	// The topic is remote-enabled from here: its sealed segments count as
	// upload lag until uploaded.
	if err := srv.waitMetric(ctx, "sluice_tier_upload_lag_segments", func(v float64) bool { return v == 0 }); err != nil {
		return err
	}
	upTime := time.Since(t0)
	endUp, _ := srv.metric("sluice_tier_uploaded_bytes_total")
	fmt.Fprintf(out, "upload backlog: %s in %v = %.1f MB/s\n", humanBytes(int64(endUp-startUp)), upTime.Round(time.Millisecond), (endUp-startUp)/1e6/upTime.Seconds())
	// Consume: the remote-only range of tier-on with a cold cache (fresh
	// server process), then the same number of records of tier-off
	// (local), then tier-on again (warm cache).
	localStart, err := srv.waitLocalStart(ctx, "tier-on", int64(*rounds*records)-5*(*segBytes/int64(*size+70)))
	if err != nil {
		return err
	}
	if *profDir != "" {
		srv.cpuProfile = filepath.Join(*profDir, "serve-consume.pprof")
	}
	if err := srv.restart(); err != nil {
		return err
	}
	n := int(localStart)
	for r := 0; r < *rounds; r++ {
		label := "remote (cold cache)"
		if r > 0 {
			label = "remote (warm cache)"
		}
		gb := float64(n**size) / 1e9
		cpu0, _ := srv.metric("process_cpu_seconds_total")
		s3cpu0 := procCPUSeconds(s3cmd.Process.Pid)
		dr, err := benchConsume(ctx, srv.kafka, "tier-on", n)
		if err != nil {
			return err
		}
		cpu1, _ := srv.metric("process_cpu_seconds_total")
		s3cpu1 := procCPUSeconds(s3cmd.Process.Pid)
		dl, err := benchConsume(ctx, srv.kafka, "tier-off", n)
		if err != nil {
			return err
		}
		cpu2, _ := srv.metric("process_cpu_seconds_total")
		rr, lr := float64(n**size)/1e6/dr.Seconds(), float64(n**size)/1e6/dl.Seconds()
		fmt.Fprintf(out, "consume round %d: %s %.1f MB/s, local %.1f MB/s: remote = %.0f %% of local (%d records from offset 0); server CPU remote %.2f s/GB, local %.2f s/GB, S3 server %.2f s/GB\n",
			r+1, label, rr, lr, 100*rr/lr, n, (cpu1-cpu0)/gb, (cpu2-cpu1)/gb, (s3cpu1-s3cpu0)/gb)
	}
	hits, _ := srv.metric("sluice_tier_cache_hits_total")
	misses, _ := srv.metric("sluice_tier_cache_misses_total")
	fmt.Fprintf(out, "cache: %.0f hits, %.0f misses since the restart\n", hits, misses)
	return nil
}

func ptr(s string) *string { return &s }

// procCPUSeconds is the user and system CPU time of process pid so far
// (Linux /proc; 0 where it cannot be read).
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 14th and 15th fields of the line, in clock ticks.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ is 100 on Linux
}

func benchProduce(ctx context.Context, broker, topic string, value []byte, records int) (time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedRecords(1<<16))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	start := time.Now()
	var ferr error
	for i := 0; i < records; i++ {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil && ferr == nil {
				ferr = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	return time.Since(start), ferr
}

func benchConsume(ctx context.Context, broker, topic string, records int) (time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxBytes(16<<20), kgo.FetchMaxPartitionBytes(8<<20))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	start := time.Now()
	got := 0
	for got < records {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return 0, ferr
		}
		got += fs.NumRecords()
	}
	return time.Since(start), nil
}

// tierBenchServer is the `sluice serve` child of the benchmark.
type tierBenchServer struct {
	dir, s3     string
	kafka, http string
	cpuProfile  string // --cpuprofile of the server, when set
	cmd         *exec.Cmd
	stderr      io.Writer
}

func (s *tierBenchServer) start() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	s.kafka, s.http = freePort(), freePort()
	s.cmd = exec.Command(exe, "serve", "--data-dir", filepath.Join(s.dir, "data"), "--kafka-addr", s.kafka, "--http-addr", s.http,
		"--log-format", "text", "--log-level", "warn", "--remote-storage", "s3://bench/tier", "--retention-check-interval", "1s",
		"--remote-upload-interval", "1s", "--schema-registry=false")
	if s.cpuProfile != "" {
		s.cmd.Args = append(s.cmd.Args, "--cpuprofile", s.cpuProfile)
	}
	s.cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench", "AWS_REGION=us-east-1", "AWS_ENDPOINT_URL="+s.s3)
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		return err
	}
	return waitListening(s.kafka)
}

// waitListening waits until addr accepts connections (60 s at most).
func waitListening(addr string) error {
	for i := 0; i < 600; i++ {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not listen within 60 s", addr)
}

// benchS3Server serves an in-memory S3-compatible store (gofakes3) until
// killed: the object store of `sluice bench tier`, and of trials of
// --remote-storage without a real store.
func benchS3Server(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice bench s3-server", "[--addr 127.0.0.1:9000] [--bucket NAME ...] [--cpuprofile FILE]")
	addr := fs.String("addr", "127.0.0.1:9000", "loopback address to serve S3 on (plain HTTP, no authentication; requests must name a loopback host, as for the HTTP API)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the server to this file until it stops (go tool pprof)")
	var buckets listFlag
	fs.Var(&buckets, "bucket", "bucket to create (repeatable)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments")
	}
	// gofakes3 checks no credentials: whoever reaches it reads and writes
	// every object, so it binds loopback only, as every Sluice server
	// does without authentication.
	if loop, err := netutil.IsLoopback(*addr); err != nil || !loop {
		return usagef("--addr %q: the in-memory S3 server has no authentication and binds only a loopback address (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", *addr)
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	// Loopback is not enough: a web page the user visits could reach it
	// by DNS rebinding or a cross-site form, so requests must be addressed
	// to a loopback name and come from no other site, as for the HTTP API.
	s3 := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()), gofakes3.WithoutVersioning()).Server()
	srv := &http.Server{Handler: netutil.LocalOnly("sluice bench s3-server (no authentication)", s3), ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	fmt.Fprintf(c.stderr, "in-memory S3 server on http://%s (objects are lost when it stops)\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *tierBenchServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.cmd.Wait()
	}
}

func (s *tierBenchServer) restart() error {
	s.stop()
	return s.start()
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

// metric returns the sum of the samples of a metric on /metrics.
func (s *tierBenchServer) metric(name string) (float64, error) {
	resp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum, found = sum+v, true
		}
	}
	if !found {
		return 0, fmt.Errorf("metric %s not on the server's /metrics", name)
	}
	return sum, nil
}

func (s *tierBenchServer) waitMetric(ctx context.Context, name string, ok func(float64) bool) error {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if v, err := s.metric(name); err == nil && ok(v) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("metric %s did not reach its value within 10 minutes", name)
}

func (s *tierBenchServer) alter(ctx context.Context, topic, key, value string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka))
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: &value}}, topic)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Err != nil {
			return fmt.Errorf("alter %s: %w %s", topic, r.Err, r.ErrMessage)
		}
	}
	return nil
}

// waitLocalStart waits until local retention has moved the topic's local
// start to at least want (and above 0), and returns it.
func (s *tierBenchServer) waitLocalStart(ctx context.Context, topic string, want int64) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafka))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		req := kmsgListOffsets(topic, -4)
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 {
			if off := resp.Topics[0].Partitions[0].Offset; off > 0 && off >= want {
				return off, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, errors.New("local retention did not move the local start within 10 minutes")
}

func kmsgListOffsets(topic string, ts int64) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, ts, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}
