package ttlcache

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestAgainstOracle: random adds, gets and clock steps against a model
// that knows every entry's age and the recency order.
func TestAgainstOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Unix(0, 0)
	const size, ttl = 5, 10 * time.Second
	c, err := New[int](size, ttl, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	type ent struct {
		v  int
		at time.Time
	}
	model := map[string]ent{}
	var order []string // least recently used first
	touch := func(k string) {
		for i, o := range order {
			if o == k {
				order = append(order[:i], order[i+1:]...)
				break
			}
		}
		order = append(order, k)
	}
	for i := range 5000 {
		k := fmt.Sprint(rng.IntN(8))
		switch rng.IntN(3) {
		case 0:
			// Add, or AddAt a moment ago (a value read before now).
			at := now.Add(-time.Duration(rng.IntN(3)) * time.Second)
			if at == now {
				c.Add(k, i)
			} else {
				c.AddAt(k, i, at)
			}
			model[k] = ent{i, at}
			touch(k)
			if len(order) > size {
				delete(model, order[0])
				order = order[1:]
			}
		case 1:
			v, ok := c.Get(k)
			e, in := model[k]
			fresh := in && now.Sub(e.at) < ttl
			if ok != fresh || (ok && v != e.v) {
				t.Fatalf("step %d: Get(%s) = %d, %v; model %+v in=%v fresh=%v", i, k, v, ok, e, in, fresh)
			}
			if fresh {
				touch(k)
			} else if in {
				delete(model, k)
				for j, o := range order {
					if o == k {
						order = append(order[:j], order[j+1:]...)
						break
					}
				}
			}
		case 2:
			now = now.Add(time.Duration(rng.IntN(4)) * time.Second)
		}
		if c.Len() != len(model) {
			t.Fatalf("step %d: Len %d, model %d", i, c.Len(), len(model))
		}
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New[int](0, time.Second, nil); err == nil {
		t.Fatal("size 0 accepted")
	}
	if _, err := New[int](1, 0, nil); err == nil {
		t.Fatal("ttl 0 accepted")
	}
}
