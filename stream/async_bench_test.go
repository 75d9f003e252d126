package stream_test

// Throughput of AsyncMap against a local HTTP service with a fixed latency:
// the ideal is concurrency/latency records per second (the latency fully
// hidden); %ideal reports how close the operator gets. The service runs in
// the same process, so at high rates it competes for the CPU; rec/cpu-s
// (records per CPU-second of the whole process, service included) says
// what the CPU allows, and %pool compares with a plain pool of
// concurrency goroutines making the same calls right after (what the
// service and the machine allow at that moment: on a loaded machine
// timers and the scheduler add to the nominal latency).
// BenchmarkAsyncMapSleep replaces the service by a timer (no HTTP): what
// the operator itself hides.
//
//	go test -run '^$' -bench 'AsyncMap(HTTP|Sleep)' -benchtime 2s ./stream/

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/stream"
)

func BenchmarkAsyncMapHTTP(b *testing.B) {
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
				b.Run(name, func(b *testing.B) { benchAsyncHTTP(b, c.latency, conc, batch) })
			}
		}
	}
}

func benchAsyncHTTP(b *testing.B, latency time.Duration, conc, batch int) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(latency) // the service's latency
		io.Copy(w, r.Body)
	}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * conc, MaxIdleConnsPerHost: 2 * conc}}
	post := func(ctx context.Context, body string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(body))
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
		}, stream.AsyncConcurrency(conc), stream.AsyncRetries(3, time.Millisecond, 10*time.Millisecond))
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
		}, stream.AsyncConcurrency(conc), stream.AsyncBatch(batch, time.Millisecond), stream.AsyncRetries(3, time.Millisecond, 10*time.Millisecond))
	}
	stream.To(out, countingSink[int64](&n))
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	if err := env.Execute(context.Background()); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	if n.Load() != int64(b.N) {
		b.Fatalf("%d records out of %d", n.Load(), b.N)
	}
	rate := float64(b.N) / el.Seconds()
	ideal := float64(conc*batch) / latency.Seconds()
	b.ReportMetric(rate, "rec/s")
	b.ReportMetric(100*rate/ideal, "%ideal")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "rec/cpu-s")
	}
	b.StopTimer()
	// The same calls from a plain pool of conc goroutines, right after:
	// what the service and the machine allow at this moment.
	raw := rawPool(b.N/batch, conc, func() {
		body := strings.Repeat(" 1234567", batch)
		if _, err := post(context.Background(), body); err != nil {
			b.Error(err)
		}
	})
	b.ReportMetric(100*rate/(raw*float64(batch)), "%pool")
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
				if err := env.Execute(context.Background()); err != nil {
					b.Fatal(err)
				}
				rate := float64(b.N) / time.Since(start).Seconds()
				b.ReportMetric(rate, "rec/s")
				b.ReportMetric(100*rate/(float64(conc)/c.latency.Seconds()), "%ideal")
				if cpu := cpuTime() - cpu0; cpu > 0 {
					b.ReportMetric(float64(b.N)/cpu.Seconds(), "rec/cpu-s")
				}
				b.StopTimer()
				raw := rawPool(b.N, conc, func() {
					t := time.NewTimer(c.latency)
					<-t.C
				})
				b.ReportMetric(100*rate/raw, "%pool")
			})
		}
	}
}
