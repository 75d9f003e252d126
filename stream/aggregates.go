package stream

// Number is the constraint of the built-in numeric aggregators.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

// Count counts records.
func Count[T any]() Aggregator[T, int64, int64] {
	return Aggregator[T, int64, int64]{
		Init:   func() int64 { return 0 },
		Add:    func(a int64, _ T) int64 { return a + 1 },
		Merge:  func(a, b int64) int64 { return a + b },
		Result: func(a int64) int64 { return a },
	}
}

// Sum adds f over the records.
func Sum[T any, N Number](f func(T) N) Aggregator[T, N, N] {
	return Aggregator[T, N, N]{
		Init:   func() N { return 0 },
		Add:    func(a N, v T) N { return a + f(v) },
		Merge:  func(a, b N) N { return a + b },
		Result: func(a N) N { return a },
	}
}

// MinMaxAcc is the accumulator of Min and Max.
type MinMaxAcc[N Number] struct {
	V   N
	Set bool
}

// Min is the smallest f over the records.
func Min[T any, N Number](f func(T) N) Aggregator[T, MinMaxAcc[N], N] {
	return extremum(f, func(a, b N) bool { return a < b })
}

// Max is the largest f over the records.
func Max[T any, N Number](f func(T) N) Aggregator[T, MinMaxAcc[N], N] {
	return extremum(f, func(a, b N) bool { return a > b })
}

func extremum[T any, N Number](f func(T) N, better func(a, b N) bool) Aggregator[T, MinMaxAcc[N], N] {
	pick := func(a, b MinMaxAcc[N]) MinMaxAcc[N] {
		if !a.Set || (b.Set && better(b.V, a.V)) {
			return b
		}
		return a
	}
	return Aggregator[T, MinMaxAcc[N], N]{
		Init:   func() MinMaxAcc[N] { return MinMaxAcc[N]{} },
		Add:    func(a MinMaxAcc[N], v T) MinMaxAcc[N] { return pick(a, MinMaxAcc[N]{V: f(v), Set: true}) },
		Merge:  pick,
		Result: func(a MinMaxAcc[N]) N { return a.V },
	}
}

// AvgAcc is the accumulator of Avg.
type AvgAcc struct {
	Sum   float64
	Count int64
}

// Avg is the mean of f over the records.
func Avg[T any, N Number](f func(T) N) Aggregator[T, AvgAcc, float64] {
	return Aggregator[T, AvgAcc, float64]{
		Init:  func() AvgAcc { return AvgAcc{} },
		Add:   func(a AvgAcc, v T) AvgAcc { return AvgAcc{Sum: a.Sum + float64(f(v)), Count: a.Count + 1} },
		Merge: func(a, b AvgAcc) AvgAcc { return AvgAcc{Sum: a.Sum + b.Sum, Count: a.Count + b.Count} },
		Result: func(a AvgAcc) float64 {
			if a.Count == 0 {
				return 0
			}
			return a.Sum / float64(a.Count)
		},
	}
}
