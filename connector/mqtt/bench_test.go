package mqtt

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func report(b *testing.B, n int, start time.Time, cpu0 float64) {
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(n)/el, "records/s")
	b.ReportMetric(float64(n)/(cpuSeconds()-cpu0), "records/cpu-s")
}

var payload100 = func() []byte {
	b := make([]byte, 100)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

// BenchmarkSink: 100-byte records published through the sink at QoS 0
// and 1 (acknowledgements awaited at a barrier every 10,000 records).
func BenchmarkSink(b *testing.B) {
	for _, qos := range []byte{0, 1} {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) {
			addr := brokerAddr(b)
			name := randName(b)
			sink, err := NewSink(SinkConfig{URL: "tcp://" + addr, Topic: name + "/out", QoS: qos, ClientID: name, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			w, err := sink.Open(ctx, stream.SubtaskInfo{})
			if err != nil {
				b.Fatal(err)
			}
			batch := make([]connector.Message, 500)
			for i := range batch {
				batch[i] = connector.Message{Value: payload100}
			}
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuSeconds()
			for i := 0; i < b.N; i += len(batch) {
				if err := w.Write(ctx, batch[:min(len(batch), b.N-i)]); err != nil {
					b.Fatal(err)
				}
				if i%10000 == 0 {
					if err := w.(stream.BarrierWriter).OnBarrier(ctx, 1); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := w.(stream.BarrierWriter).OnBarrier(ctx, 1); err != nil {
				b.Fatal(err)
			}
			report(b, b.N, start, cpu0)
			_ = w.Close(ctx)
		})
	}
}

// BenchmarkSource: 100-byte messages published at QoS 0 by mosquitto_pub
// -l (or, without it, a plain paho client) while the source reads them (QoS 0 subscription: Mosquitto's
// in-flight window of 20 does not apply). Lost QoS 0 messages are
// reported, not fatal.
func BenchmarkSource(b *testing.B) {
	addr := brokerAddr(b)
	name := randName(b)
	pub := publisher(b, addr)
	_, sp := openSplit(b, SourceConfig{URL: "tcp://" + addr, Topics: []string{name + "/#"}, QoS: 0, ClientID: name, CleanSession: true, MaxInFlight: 65536, Logger: quiet})
	waitSubscribed(b, sp, pub, name+"/probe")
	ctx := context.Background()
	buf := make([]connector.Message, 1024)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuSeconds()
	if tool, err := exec.LookPath("mosquitto_pub"); err == nil {
		// The broker's own tool publishes, in another process.
		lines := bytes.Repeat(append(append([]byte(nil), payload100[:99]...), '\n'), b.N)
		host, port, _ := net.SplitHostPort(addr)
		cmd := exec.Command(tool, "-h", host, "-p", port, "-q", "0", "-t", name+"/in", "-l")
		cmd.Stdin = bytes.NewReader(lines)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = cmd.Wait() }()
	} else {
		go func() {
			for i := 0; i < b.N; i++ {
				pub.Publish(name+"/in", 0, false, payload100)
			}
		}()
	}
	got := 0
	idle := time.Now()
	for got < b.N && time.Since(idle) < 2*time.Second {
		n, err := sp.Read(ctx, buf)
		if err != nil {
			b.Fatal(err)
		}
		if n > 0 {
			idle = time.Now()
		}
		got += n
	}
	report(b, got, start, cpu0)
	if got < b.N {
		b.ReportMetric(float64(b.N-got), "lost")
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
