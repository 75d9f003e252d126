package stream

import (
	"github.com/sluicehq/sluice/state"
)

// KeyedStream is a stream partitioned by a key: every record with the
// same key goes to the same parallel subtask of the next operator, which
// keeps that key's state and timers.
type KeyedStream[K comparable, T any] struct {
	s    Stream[T]
	key  func(T) K
	hash func(K) uint64
}

// KeyBy partitions s by key. Keys hash with state.Hasher (stable across
// runs, so state can be restored and rescaled) into key groups.
func KeyBy[K comparable, T any](s Stream[T], key func(T) K) KeyedStream[K, T] {
	h := state.Hasher[K]()
	s.part = partHash
	s.hash = func(v T) uint64 { return h(key(v)) }
	return KeyedStream[K, T]{s: s, key: key, hash: h}
}

// Stream returns the records of the keyed stream as a plain stream
// (partitioned by key for its next operator).
func (k KeyedStream[K, T]) Stream() Stream[T] { return k.s }

// keyedOne adds a keyed one-input operator (default parallelism: the
// Env's).
func keyedOne[K comparable, In, Out any](ks KeyedStream[K, In], kind string, opts []OpOption, mk func(bc *buildCtx, n *node) collector[In]) Stream[Out] {
	n := ks.s.env.newNode(kind, opts)
	n.keyed = true
	n.build = func(bc *buildCtx) any { return mk(bc, n) }
	n.newGate = oneGate[In]
	connect(ks.s, n, 0)
	return Stream[Out]{env: ks.s.env, n: n}
}

// OutputTag names a side output of type T, such as the late records of a
// window. Create tags with NewOutputTag and read the side output with
// SideOutput.
type OutputTag[T any] struct{ t *tagInfo }

type tagInfo struct{ name string }

// NewOutputTag returns a new tag; tags are compared by identity.
func NewOutputTag[T any](name string) OutputTag[T] { return OutputTag[T]{t: &tagInfo{name: name}} }

// Name returns the tag's name.
func (t OutputTag[T]) Name() string {
	if t.t == nil {
		return ""
	}
	return t.t.name
}

// SideOutput returns the side output tag of the operator that produced s.
// The operator must have been given the tag (for example with
// WindowedStream.SideOutputLate).
func SideOutput[T, R any](s Stream[R], tag OutputTag[T]) Stream[T] {
	for i, p := range s.n.ports {
		if tag.t != nil && p.tag == tag.t {
			return Stream[T]{env: s.env, n: s.n, port: i}
		}
	}
	s.env.setErr(&tagError{op: s.n.name, tag: tag.Name()})
	return Stream[T]{env: s.env, n: s.n, port: -1}
}

type tagError struct{ op, tag string }

func (e *tagError) Error() string {
	return "stream: operator " + e.op + " has no side output " + e.tag
}

// addSidePort registers tag as a new output port of n and returns its index.
func addSidePort(n *node, tag *tagInfo) int {
	n.ports = append(n.ports, &port{tag: tag})
	return len(n.ports) - 1
}
