package kafka_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestEOSv2InitProducerIDAbortsOpenTransaction checks that a restarted
// instance (same transactional id) unblocks read_committed readers at once:
// its InitProducerId aborts the transaction its predecessor left open and
// fences the predecessor's epoch, before it answers.
func TestEOSv2InitProducerIDAbortsOpenTransaction(t *testing.T) {
	onEachCluster(t, func(t *testing.T, c *eosCluster) {
		const topic = "restart"
		c.createTopic(t, topic, 1)
		ctx := testCtx(t)
		adm := c.admin(t)
		old := newTxnProducer(t, c, "app-a", topic)
		old.begin(ctx, t, "left-open")
		plain := c.client(t, kgo.DefaultProduceTopic(topic))
		if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		stable := func() (lso, hwm int64) {
			l, err1 := adm.ListCommittedOffsets(ctx, topic)
			h, err2 := adm.ListEndOffsets(ctx, topic)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			lo, _ := l.Lookup(topic, 0)
			ho, _ := h.Lookup(topic, 0)
			return lo.Offset, ho.Offset
		}
		if lso, hwm := stable(); lso != 0 || hwm != 2 {
			t.Fatalf("open transaction: last stable offset %d, high watermark %d", lso, hwm)
		}

		restarted := c.client(t, kgo.TransactionalID("app-a"), kgo.TransactionTimeout(20*time.Second))
		if _, _, err := restarted.ProducerID(ctx); err != nil {
			t.Fatalf("init producer id: %v", err)
		}
		// No waiting: the abort is done when InitProducerId answers.
		if lso, hwm := stable(); lso != hwm {
			t.Fatalf("after the restart's InitProducerId: last stable offset %d, high watermark %d", lso, hwm)
		}
		if got := c.readToSentinel(t, topic, 1, kgo.ReadCommitted()); !slices.Equal(got, []string{"after"}) {
			t.Fatalf("read_committed: %v", got)
		}
		// PRODUCER_FENCED is fatal to the zombie (franz-go would try to
		// recover from INVALID_PRODUCER_EPOCH, KIP-588)...
		if err := old.cl.EndTransaction(ctx, kgo.TryCommit); !errors.Is(err, kerr.ProducerFenced) {
			t.Fatalf("the fenced producer's commit: %v, want PRODUCER_FENCED", err)
		}
		// ... but a client from before KIP-588 (EndTxn v1) does not know
		// it and gets INVALID_PRODUCER_EPOCH, as from Kafka.
		legacy := c.client(t, kgo.MaxVersions(kversion.V2_6_0()), kgo.TransactionalID("app-b"), kgo.DefaultProduceTopic(topic))
		if err := legacy.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := legacy.ProduceSync(ctx, &kgo.Record{Value: []byte("legacy")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.client(t, kgo.TransactionalID("app-b")).ProducerID(ctx); err != nil {
			t.Fatal(err)
		}
		want := kerr.InvalidProducerEpoch
		if c.fake {
			want = kerr.ProducerFenced // kfake answers PRODUCER_FENCED at every version
		}
		if err := legacy.EndTransaction(ctx, kgo.TryCommit); !errors.Is(err, want) {
			t.Fatalf("the fenced legacy producer's commit: %v, want %v", err, want)
		}
	})
}

// cutDialer lets a test kill a client's network: cut closes its
// connections and refuses new ones, as if the process died.
type cutDialer struct {
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func (d *cutDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, errors.New("network cut")
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, conn)
	}
	return conn, err
}

func (d *cutDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		c.Close()
	}
}

// TestEOSv2TransactionTimeout checks that the broker aborts a transaction
// its killed client left open once the transaction timeout given in
// InitProducerId (5 s here, allowed) has passed, not before, and that a
// timeout beyond transaction.max.timeout.ms is refused.
func TestEOSv2TransactionTimeout(t *testing.T) {
	onEachCluster(t, func(t *testing.T, c *eosCluster) {
		const topic, timeout = "abandoned", 5 * time.Second
		c.createTopic(t, topic, 1)
		ctx := testCtx(t)
		adm := c.admin(t)

		init := kmsg.NewPtrInitProducerIDRequest()
		init.TransactionalID = kmsg.StringPtr("too-long")
		init.TransactionTimeoutMillis = int32((16 * time.Minute).Milliseconds())
		if resp, err := init.RequestWith(ctx, c.client(t)); err != nil || resp.ErrorCode != kerr.InvalidTransactionTimeout.Code {
			t.Fatalf("16 min transaction timeout: %v %v, want INVALID_TRANSACTION_TIMEOUT", err, resp)
		}

		var d cutDialer
		p := c.client(t, kgo.TransactionalID("killed"), kgo.TransactionTimeout(timeout), kgo.DefaultProduceTopic(topic), kgo.Dialer(d.dial))
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("abandoned")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		d.kill()
		stable := func() bool {
			l, err1 := adm.ListCommittedOffsets(ctx, topic)
			h, err2 := adm.ListEndOffsets(ctx, topic)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			lo, _ := l.Lookup(topic, 0)
			ho, _ := h.Lookup(topic, 0)
			return lo.Offset == ho.Offset
		}
		waitFor(t, "the abandoned transaction to be aborted", stable)
		took := time.Since(began)
		if took < timeout-200*time.Millisecond || took > timeout+3*time.Second {
			t.Fatalf("aborted after %v, want about %v", took, timeout)
		}
		if got := c.readToSentinel(t, topic, 1, kgo.ReadCommitted()); len(got) != 0 {
			t.Fatalf("read_committed: %v", got)
		}
		t.Logf("aborted %v after the transaction began", took)
	})
}
