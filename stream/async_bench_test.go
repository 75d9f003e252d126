package stream_test

// Throughput of AsyncMap against a local HTTP service with a fixed latency.
// The target is throughput ≥ 80 % of concurrency/latency, the
// latency hidden. The service runs in a separate process (this test
// binary, started as a child: TestAsyncBenchService), as a user's would,
// so the figures split the CPU of the operator's process from the
// service's. Columns:
//
//   - rec/s, and %ideal = rec/s / (concurrency × batch / nominal latency);
//   - %slots = calls/s × mean call latency / concurrency (Little's law,
//     with the latency the operator itself measured for each call): the
//     share of the time the concurrency's call slots were busy, which is
//     what "latency hidden" means whatever the machine makes of a 1 ms
//     timer or an HTTP round trip;
//   - latency-ms: that mean call latency (the nominal latency plus the
//     HTTP round trip and, on a loaded machine, the scheduler's delays);
//   - cli-us/rec: CPU of the operator's process per record (the operator,
//     the HTTP client, the source and the sink); pool-us/call: the same
//     client's CPU per call in a plain pool of concurrency goroutines
//     making the same calls right after (no operator); svc-us/call: the
//     service process's CPU per call;
//   - %pool = rec/s / the pool's records per second in the same
//     benchmark (what the service and the machine allow at that moment).
//
// BenchmarkAsyncMapSleep replaces the service by a timer (no HTTP, no
// other process): what the operator itself hides and costs.
//
//	go test -run '^$' -bench 'AsyncMap(HTTP|Sleep)' -benchtime 2s ./stream/

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
)

// TestAsyncBenchService is the service of BenchmarkAsyncMapHTTP when the
// benchmark starts this binary as a child (SLUICE_ASYNC_BENCH_SERVICE=1):
// it listens on loopback, prints its address, answers POST /?latency=D
// after D with the request's body, GET /cpu with its own CPU time (ns),
// and stops when its standard input closes.
func TestAsyncBenchService(t *testing.T) {
	if os.Getenv("SLUICE_ASYNC_BENCH_SERVICE") == "" {
		t.Skip("run by BenchmarkAsyncMapHTTP")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cpu" {
			fmt.Fprint(w, int64(cpuTime()))
			return
		}
		d, err := time.ParseDuration(r.URL.Query().Get("latency"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(d) // the service's latency
		io.Copy(w, r.Body)
	})}
	go srv.Serve(ln)
	fmt.Printf("listening %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
}

// benchService is the child process running TestAsyncBenchService.
type benchService struct {
	url   string
	stdin io.Closer
	cmd   *exec.Cmd
}

func startBenchService(b *testing.B) *benchService {
	cmd := exec.Command(os.Args[0], "-test.run=^TestAsyncBenchService$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SLUICE_ASYNC_BENCH_SERVICE=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		in.Close()
		cmd.Wait()
		b.Fatalf("the service did not start: %q %v", line, err)
	}
	go io.Copy(io.Discard, out)
	return &benchService{url: "http://" + addr, stdin: in, cmd: cmd}
}

func (s *benchService) stop() {
	s.stdin.Close()
	s.cmd.Wait()
}

// cpu returns the service process's CPU time.
func (s *benchService) cpu(b *testing.B) time.Duration {
	resp, err := http.Get(s.url + "/cpu")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	ns, err := strconv.ParseInt(string(body), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(ns)
}

func BenchmarkAsyncMapHTTP(b *testing.B) {
	svc := startBenchService(b)
	defer svc.stop()
	for _, c := range []struct {
		latency time.Duration
		conc    []int
	}{
		{time.Millisecond, []int{4, 16, 64}},
		{10 * time.Millisecond, []int{16, 64, 256}},
	} {
		for _, conc := range c.conc {
			for _, batch := range []int{1, 10} {
				name := fmt.Sprintf("latency=%s/concurrency=%d", c.latency, conc)
				if batch > 1 {
					name += fmt.Sprintf("/batch=%d", batch)
				}
				b.Run(name, func(b *testing.B) { benchAsyncHTTP(b, svc, c.latency, conc, batch) })
			}
		}
	}
}

func benchAsyncHTTP(b *testing.B, svc *benchService, latency time.Duration, conc, batch int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * conc, MaxIdleConnsPerHost: 2 * conc}}
	defer client.CloseIdleConnections()
	url := svc.url + "/?latency=" + latency.String()
	post := func(ctx context.Context, body string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			return "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		return string(out), err
	}
	env := stream.New(stream.WithParallelism(1))
	var n atomic.Int64
	src := stream.FromSource(env, "gen", stream.Generate(int64(b.N), 1, func(i int64) int64 { return i }), stream.WatermarkStrategy[int64]{})
	var out stream.Stream[int64]
	if batch == 1 {
		out = stream.AsyncMap(src, func(ctx context.Context, v int64) (int64, error) {
			s, err := post(ctx, strconv.FormatInt(v, 10))
			if err != nil {
				return 0, err
			}
			return strconv.ParseInt(s, 10, 64)
		}, stream.AsyncConcurrency(conc), stream.AsyncRetries(3, time.Millisecond, 10*time.Millisecond), stream.Name("call"))
	} else {
		out = stream.AsyncMapBatch(src, func(ctx context.Context, vs []int64) ([]int64, error) {
			var body []byte
			for _, v := range vs {
				body = strconv.AppendInt(append(body, ' '), v, 10)
			}
			if _, err := post(ctx, string(body)); err != nil {
				return nil, err
			}
			return vs, nil
		}, stream.AsyncConcurrency(conc), stream.AsyncBatch(batch, time.Millisecond), stream.AsyncRetries(3, time.Millisecond, 10*time.Millisecond), stream.Name("call"))
	}
	stream.To(out, countingSink[int64](&n))
	svc0, cpu0 := svc.cpu(b), cpuTime()
	b.ResetTimer()
	start := time.Now()
	job, err := env.Start(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if err := job.Wait(); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	cpu, svcCPU := cpuTime()-cpu0, svc.cpu(b)-svc0
	b.StopTimer()
	if n.Load() != int64(b.N) {
		b.Fatalf("%d records out of %d", n.Load(), b.N)
	}
	rate := float64(b.N) / el.Seconds()
	calls := job.AsyncMetrics()[0].Calls
	reportAsync(b, job, rate, float64(conc*batch)/latency.Seconds(), float64(calls)/el.Seconds(), conc)
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cli-us/rec")
	b.ReportMetric(float64(svcCPU.Microseconds())/float64(calls), "svc-us/call")
	// The same calls from a plain pool of conc goroutines, right after:
	// what the service and the machine allow at this moment, and what the
	// client costs without the operator.
	pcpu0 := cpuTime()
	raw := rawPool(b.N/batch, conc, func() {
		body := strings.Repeat(" 1234567", batch)
		if _, err := post(context.Background(), body); err != nil {
			b.Error(err)
		}
	})
	b.ReportMetric(float64((cpuTime()-pcpu0).Microseconds())/float64(max(b.N/batch, 1)), "pool-us/call")
	b.ReportMetric(100*rate/(raw*float64(batch)), "%pool")
}

// reportAsync reports rec/s, %ideal, the mean call latency the operator
// measured and %slots: the calls per second times that latency over the
// concurrency (Little's law), how busy the call slots were.
func reportAsync(b *testing.B, job *stream.Job, rate, ideal, callRate float64, conc int) {
	b.ReportMetric(rate, "rec/s")
	b.ReportMetric(100*rate/ideal, "%ideal")
	for _, h := range job.Latency() {
		if h.Kind == stream.LatencyAsync && h.Count > 0 {
			mean := h.Sum.Seconds() / float64(h.Count)
			b.ReportMetric(1000*mean, "latency-ms")
			b.ReportMetric(100*callRate*mean/float64(conc), "%slots")
		}
	}
}

// rawPool makes calls calls of f from conc goroutines and returns the
// calls per second.
func rawPool(calls, conc int, f func()) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(calls) {
				f()
			}
		})
	}
	wg.Wait()
	return float64(calls) / time.Since(start).Seconds()
}

// BenchmarkAsyncMapSleep is BenchmarkAsyncMapHTTP with a service that is
// a timer: each call waits the latency on its context and answers.
// us/rec is the process's CPU per record; pool-us/call the CPU per call of
// a plain pool of goroutines waiting the same timers: the difference is
// what the operator costs per record.
func BenchmarkAsyncMapSleep(b *testing.B) {
	for _, c := range []struct {
		latency time.Duration
		conc    []int
	}{
		{time.Millisecond, []int{4, 16, 64}},
		{10 * time.Millisecond, []int{16, 64, 256}},
	} {
		for _, conc := range c.conc {
			b.Run(fmt.Sprintf("latency=%s/concurrency=%d", c.latency, conc), func(b *testing.B) {
				env := stream.New(stream.WithParallelism(1))
				var n atomic.Int64
				src := stream.FromSource(env, "gen", stream.Generate(int64(b.N), 1, func(i int64) int64 { return i }), stream.WatermarkStrategy[int64]{})
				out := stream.AsyncMap(src, func(ctx context.Context, v int64) (int64, error) {
					t := time.NewTimer(c.latency)
					defer t.Stop()
					select {
					case <-t.C:
						return v, nil
					case <-ctx.Done():
						return 0, ctx.Err()
					}
				}, stream.AsyncConcurrency(conc))
				stream.To(out, countingSink[int64](&n))
				cpu0 := cpuTime()
				b.ResetTimer()
				start := time.Now()
				job, err := env.Start(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if err := job.Wait(); err != nil {
					b.Fatal(err)
				}
				el := time.Since(start)
				cpu := cpuTime() - cpu0
				b.StopTimer()
				rate := float64(b.N) / el.Seconds()
				reportAsync(b, job, rate, float64(conc)/c.latency.Seconds(), rate, conc)
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "us/rec")
				pcpu0 := cpuTime()
				raw := rawPool(b.N, conc, func() {
					t := time.NewTimer(c.latency)
					<-t.C
				})
				b.ReportMetric(float64((cpuTime()-pcpu0).Microseconds())/float64(b.N), "pool-us/call")
				b.ReportMetric(100*rate/raw, "%pool")
			})
		}
	}
}

// BenchmarkAsyncMapNoop is AsyncMap with a call that answers at once: the
// operator's own CPU and allocations per record (queue, hand-off to a
// worker, the answer's way back, emission), with nothing to wait for.
func BenchmarkAsyncMapNoop(b *testing.B) {
	for _, conc := range []int{1, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			env := stream.New(stream.WithParallelism(1))
			var n atomic.Int64
			src := stream.FromSource(env, "gen", stream.Generate(int64(b.N), 1, func(i int64) int64 { return i }), stream.WatermarkStrategy[int64]{})
			out := stream.AsyncMap(src, func(_ context.Context, v int64) (int64, error) { return v, nil }, stream.AsyncConcurrency(conc))
			stream.To(out, countingSink[int64](&n))
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			if err := env.Execute(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if n.Load() != int64(b.N) {
				b.Fatalf("%d records out of %d", n.Load(), b.N)
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1000/float64(b.N), "us/rec")
		})
	}
}
