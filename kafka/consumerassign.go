package kafka

import (
	"maps"
	"slices"
)

// Server-side assignors of the consumer group protocol: they compute each
// member's target assignment from the subscriptions and the partitions of
// the subscribed topics. Both are deterministic (members and partitions are
// visited in sorted order).

// assignInput is what an assignor sees.
type assignInput struct {
	members []string                   // sorted member ids
	subs    map[string]map[string]bool // member -> subscribed existing topics
	meta    topicMeta                  // partition counts of subscribed topics
	prev    map[string]map[tp]struct{} // member -> previous target
}

type assignment map[string]map[tp]struct{}

func (in assignInput) empty() assignment {
	out := make(assignment, len(in.members))
	for _, id := range in.members {
		out[id] = make(map[tp]struct{})
	}
	return out
}

// partitions returns every partition of the subscribed topics, sorted.
func (in assignInput) partitions() []tp {
	var out []tp
	for _, name := range slices.Sorted(maps.Keys(in.meta)) {
		for p := range in.meta[name] {
			out = append(out, tp{name, p})
		}
	}
	return out
}

// homogeneous reports whether every member subscribes to the same topics.
func (in assignInput) homogeneous() bool {
	for _, id := range in.members[1:] {
		if !maps.Equal(in.subs[id], in.subs[in.members[0]]) {
			return false
		}
	}
	return true
}

// assignRange gives each member, topic by topic, a contiguous range of
// partitions: the members subscribed to a topic, sorted by id, get
// n/k partitions each and the first n%k one more.
func assignRange(in assignInput) assignment {
	out := in.empty()
	for _, name := range slices.Sorted(maps.Keys(in.meta)) {
		var subs []string
		for _, id := range in.members {
			if in.subs[id][name] {
				subs = append(subs, id)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n, k := int(in.meta[name]), len(subs)
		next := 0
		for i, id := range subs {
			count := n / k
			if i < n%k {
				count++
			}
			for p := next; p < next+count; p++ {
				out[id][tp{name, int32(p)}] = struct{}{}
			}
			next += count
		}
	}
	return out
}

// assignUniform spreads the partitions evenly over the members subscribed
// to them, keeping as much of the previous target as balance allows
// (sticky). With identical subscriptions every member ends with n/k or
// n/k+1 partitions; otherwise partitions move from the most to the least
// loaded eligible members until no move improves the balance.
func assignUniform(in assignInput) assignment {
	out := in.empty()
	if len(in.members) == 0 {
		return out
	}
	all := in.partitions()
	taken := make(map[tp]bool, len(all))
	// Keep the previous target where still valid.
	for _, id := range in.members {
		for _, t := range slices.SortedFunc(maps.Keys(in.prev[id]), compareTP) {
			if n, ok := in.meta[t.Topic]; ok && t.Partition < n && in.subs[id][t.Topic] && !taken[t] {
				out[id][t] = struct{}{}
				taken[t] = true
			}
		}
	}
	if in.homogeneous() {
		balanceHomogeneous(in, out, all, taken)
	} else {
		balanceHeterogeneous(in, out, all, taken)
	}
	return out
}

// balanceHomogeneous trims every member to its quota (the members keeping
// most get the n%k larger quotas) and fills the quotas with the free
// partitions.
func balanceHomogeneous(in assignInput, out assignment, all []tp, taken map[tp]bool) {
	eligible := 0
	for _, t := range all {
		if in.subs[in.members[0]][t.Topic] {
			eligible++
		}
	}
	k := len(in.members)
	order := slices.Clone(in.members)
	slices.SortStableFunc(order, func(a, b string) int { return len(out[b]) - len(out[a]) })
	quota := make(map[string]int, k)
	for i, id := range order {
		quota[id] = eligible / k
		if i < eligible%k {
			quota[id]++
		}
		held := slices.SortedFunc(maps.Keys(out[id]), compareTP)
		for _, t := range held[min(quota[id], len(held)):] {
			delete(out[id], t)
			taken[t] = false
		}
	}
	i := 0
	for _, t := range all {
		if taken[t] || !in.subs[in.members[0]][t.Topic] {
			continue
		}
		for len(out[order[i]]) >= quota[order[i]] {
			i++
		}
		out[order[i]][t] = struct{}{}
		taken[t] = true
	}
}

// balanceHeterogeneous gives each free partition to its least loaded
// eligible member, then moves partitions from a member to an eligible one
// with at least two fewer while there is such a move (each move lowers the
// sum of squared loads, so this ends).
func balanceHeterogeneous(in assignInput, out assignment, all []tp, taken map[tp]bool) {
	eligible := func(t tp) []string {
		var ids []string
		for _, id := range in.members {
			if in.subs[id][t.Topic] {
				ids = append(ids, id)
			}
		}
		return ids
	}
	least := func(ids []string) string {
		best := ""
		for _, id := range ids {
			if best == "" || len(out[id]) < len(out[best]) {
				best = id
			}
		}
		return best
	}
	for _, t := range all {
		if taken[t] {
			continue
		}
		if ids := eligible(t); len(ids) > 0 {
			out[least(ids)][t] = struct{}{}
			taken[t] = true
		}
	}
	for moved := true; moved; {
		moved = false
		order := slices.Clone(in.members)
		slices.SortStableFunc(order, func(a, b string) int { return len(out[b]) - len(out[a]) })
		for _, from := range order {
			for _, t := range slices.SortedFunc(maps.Keys(out[from]), compareTP) {
				to := least(eligible(t))
				if len(out[from])-len(out[to]) >= 2 {
					delete(out[from], t)
					out[to][t] = struct{}{}
					moved = true
					break
				}
			}
			if moved {
				break
			}
		}
	}
}
