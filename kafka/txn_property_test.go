package kafka_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionsRandomOracle interleaves committed and aborted
// transactions of two transactional producers with plain writes across two
// partitions, in a random order, and checks what read_committed and
// read_uncommitted consumers see against a simple oracle: per partition,
// read_uncommitted sees every record in write order, read_committed the same
// sequence without the aborted ones.
func TestTransactionsRandomOracle(t *testing.T) {
	const topic = "txn-oracle"
	for seed := range 3 {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			s := kafkatest.Start(t, kafkatest.Options{})
			createTopic(t, s, topic, 2)
			ctx := testCtx(t)
			rng := rand.New(rand.NewPCG(uint64(seed), 7))
			opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner())}
			txs := []*kgo.Client{
				s.Client(t, append(opts, kgo.TransactionalID(fmt.Sprint("ora-a", seed)))...),
				s.Client(t, append(opts, kgo.TransactionalID(fmt.Sprint("ora-b", seed)))...),
			}
			plain := s.Client(t, opts...)
			all := [2][]string{}       // per partition, write order
			committed := [2][]string{} // per partition, without aborted
			n := 0
			for round := range 12 {
				cl := txs[round%2]
				if err := cl.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				var mine [2][]string
				for range 1 + rng.IntN(4) {
					p := int32(rng.IntN(2))
					v := fmt.Sprintf("t%d-%d", round, n)
					n++
					if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
						t.Fatal(err)
					}
					all[p] = append(all[p], v)
					mine[p] = append(mine[p], v)
					if rng.IntN(2) == 0 { // interleave a plain write
						q := int32(rng.IntN(2))
						w := fmt.Sprintf("p%d", n)
						n++
						if err := plain.ProduceSync(ctx, &kgo.Record{Partition: q, Value: []byte(w)}).FirstErr(); err != nil {
							t.Fatal(err)
						}
						all[q] = append(all[q], w)
						// A plain record after an open transaction's records
						// is committed; it appears in order below.
						committed[q] = append(committed[q], w)
					}
				}
				commit := rng.IntN(3) > 0
				end := kgo.TryAbort
				if commit {
					end = kgo.TryCommit
				}
				if err := cl.EndTransaction(ctx, end); err != nil {
					t.Fatal(err)
				}
				if commit {
					// Transactional records keep their write position.
					for p := range 2 {
						committed[p] = mergeInOrder(all[p], committed[p], mine[p])
					}
				}
			}
			total := len(all[0]) + len(all[1])
			totalCommitted := len(committed[0]) + len(committed[1])
			check := func(iso kgo.IsolationLevel, want [2][]string, n int) {
				got := [2][]string{}
				for _, r := range consumeN(t, s, topic, n, kgo.FetchIsolationLevel(iso)) {
					got[r.Partition] = append(got[r.Partition], string(r.Value))
				}
				for p := range 2 {
					if !slices.Equal(got[p], want[p]) {
						t.Fatalf("partition %d:\n got %v\nwant %v", p, got[p], want[p])
					}
				}
			}
			check(kgo.ReadUncommitted(), all, total)
			check(kgo.ReadCommitted(), committed, totalCommitted)
		})
	}
}

// mergeInOrder returns the elements of order that are in either have or add,
// in the order of order.
func mergeInOrder(order, have, add []string) []string {
	keep := map[string]bool{}
	for _, v := range have {
		keep[v] = true
	}
	for _, v := range add {
		keep[v] = true
	}
	var out []string
	for _, v := range order {
		if keep[v] {
			out = append(out, v)
		}
	}
	return out
}
