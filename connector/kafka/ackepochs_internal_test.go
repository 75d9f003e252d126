package kafka

import (
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAckEpochs checks that the at-least-once writer answers a barrier
// only once the records of its epoch and of every earlier epoch are
// acknowledged, in barrier order, and passes a produce error on.
func TestAckEpochs(t *testing.T) {
	var p producer
	var a ackEpochs
	var answered []string
	barrier := func(name string) func(error) {
		return func(err error) {
			if err != nil {
				name += ": " + err.Error()
			}
			answered = append(answered, name)
		}
	}
	// write adds n records to the current epoch, as Write does before it
	// hands them to the client, and returns their promises.
	write := func(n int) []func(*kgo.Record, error) {
		e := a.current(&p)
		e.pending.Add(int64(n))
		out := make([]func(*kgo.Record, error), n)
		for i := range out {
			out[i] = e.promise
		}
		return out
	}
	first := write(2)
	a.seal(&p, barrier("b1"))
	second := write(1)
	a.seal(&p, barrier("b2"))
	third := write(1)

	second[0](nil, nil) // epoch 2 done, but epoch 1 is not
	if len(answered) != 0 {
		t.Fatalf("answered %v before the first epoch was acknowledged", answered)
	}
	first[0](nil, nil)
	if len(answered) != 0 {
		t.Fatalf("answered %v with a record of the first epoch outstanding", answered)
	}
	first[1](nil, nil)
	if want := []string{"b1", "b2"}; !reflect.DeepEqual(answered, want) {
		t.Fatalf("answered %v, want %v", answered, want)
	}

	// An epoch with no records is answered at its barrier; one whose
	// record failed is answered with the error.
	third[0](nil, errors.New("broker said no"))
	a.seal(&p, barrier("b3"))
	if want := []string{"b1", "b2", "b3: broker said no"}; !reflect.DeepEqual(answered, want) {
		t.Fatalf("answered %v, want %v", answered, want)
	}
	a.seal(&p, barrier("b4"))
	if len(answered) != 4 {
		t.Fatalf("an empty epoch was not answered at its barrier: %v", answered)
	}
}
