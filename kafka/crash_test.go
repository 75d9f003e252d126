package kafka_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// childDirEnv makes the test binary run as a server child process (see
// TestMain): it serves the log in that directory on 127.0.0.1:0 and prints
// "ADDR host:port" once listening.
const childDirEnv = "SLUICE_KAFKA_TEST_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	if cfg := os.Getenv(eosChildEnv); cfg != "" {
		os.Exit(runEOSChild(cfg))
	}
	os.Exit(m.Run())
}

func runChild(dir string) int {
	l, err := logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		return 1
	}
	s, err := kafka.New(l, kafka.DefaultConfig(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: new:", err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: listen:", err)
		return 1
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	s.Serve(context.Background(), ln) // until killed
	return 0
}

// startChild runs a server child process on dir and returns it with its
// address.
func startChild(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		t.Fatalf("child did not start: %q %v", line, err)
	}
	return cmd, strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))
}

// TestKillDashNineUnderLoad kills the server with SIGKILL while an
// idempotent producer writes with acks=-1, restarts it on the same
// directory, and checks that every record the client saw acknowledged is
// there. The kill comes after a random number of acknowledgements.
func TestKillDashNineUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns server processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const topic = "crash"
	var mu sync.Mutex
	acked := map[string]bool{}
	next := 0
	for round := range 3 {
		cmd, addr := startChild(t, dir)
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			if _, err := kadm.NewClient(cl).CreateTopic(testCtx(t), 3, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		killAt := 200 + rng.IntN(2000)
		roundAcks := 0
		killed := make(chan struct{})
		var once sync.Once
		for i := 0; ; i++ {
			if ctx.Err() != nil {
				cancel()
				mu.Lock()
				got := roundAcks
				mu.Unlock()
				t.Fatalf("round %d: %d acknowledgements before the deadline, wanted %d", round, got, killAt)
			}
			select {
			case <-killed:
			default:
				v := fmt.Sprintf("r%d-%d", round, next)
				next++
				cl.Produce(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
					if err != nil {
						return
					}
					mu.Lock()
					acked[string(r.Value)] = true
					roundAcks++
					if roundAcks >= killAt {
						once.Do(func() {
							cmd.Process.Signal(syscall.SIGKILL)
							close(killed)
						})
					}
					mu.Unlock()
				})
				continue
			}
			break
		}
		cancel()
		cl.Close()
		cmd.Wait()
	}

	// Restart once more and read everything back.
	cmd, addr := startChild(t, dir)
	defer cmd.Process.Kill()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	stored := map[string]int{}
	ctx := testCtx(t)
	for n := int64(0); n < total; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", n, total)
		}
		fs.EachRecord(func(r *kgo.Record) {
			stored[string(r.Value)]++
			n++
		})
	}
	mu.Lock()
	defer mu.Unlock()
	for v := range acked {
		if stored[v] == 0 {
			t.Errorf("acknowledged record %s lost", v)
		}
	}
	for v, c := range stored {
		if c > 1 {
			t.Errorf("record %s stored %d times", v, c)
		}
	}
	t.Logf("%d acknowledged, %d stored, 3 kills", len(acked), len(stored))
}
