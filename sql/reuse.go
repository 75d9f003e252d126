package sql

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/sql/exec"
)

// Sub-plan reuse (Flink's table.optimizer.reuse-sub-plan-enabled): two
// plan nodes that compute the same thing over the same input are built
// once and their stream shared. digest names what a node computes; it
// is "" for the nodes this does not cover, which are never shared. It
// covers scans, calcs that call no function (so nothing evaluated per
// row can differ between two uses: RAND(), PROCTIME()), and window and
// group aggregations, whose inputs must be covered too.
func (b *builder) digest(n node) string {
	if d, ok := b.digests[n]; ok {
		return d
	}
	d := b.digest1(n)
	b.digests[n] = d
	return d
}

func (b *builder) digest1(n node) string {
	switch n := n.(type) {
	case *renamed:
		return b.digest(n.node)
	case *scan:
		return fmt.Sprintf("scan(%p)", n.table)
	case *calc:
		in := b.digest(n.in)
		if in == "" || strings.Contains(n.filterText, "(") {
			return ""
		}
		var s strings.Builder
		fmt.Fprintf(&s, "calc(%s; where %s; ", in, n.filterText)
		for i, c := range n.out {
			if n.pass[i] < 0 && strings.Contains(n.exprText[i], "(") {
				return ""
			}
			fmt.Fprintf(&s, "%d:%q:%s, ", n.pass[i], n.exprText[i], c.typ)
		}
		s.WriteString(")")
		return s.String()
	case *windowAgg:
		in := b.digest(n.in)
		if in == "" {
			return ""
		}
		return fmt.Sprintf("windowAgg(%s; key %v; %+v; %s)", in, n.key, n.spec, aggsDigest(n.aggs, n.text))
	case *groupAgg:
		in := b.digest(n.in)
		if in == "" {
			return ""
		}
		return fmt.Sprintf("groupAgg(%s; key %v; updating %v; %s)", in, n.key, n.in.updating(), aggsDigest(n.aggs, n.text))
	}
	return ""
}

func aggsDigest(aggs []exec.AggCall, text []string) string {
	var s strings.Builder
	for i, a := range aggs {
		fmt.Fprintf(&s, "%d/%d/%v/%v/%d/%s/%s/%q ", a.Kind, a.Arg, a.Args, a.Distinct, a.Filter, a.ArgType, a.ResultType, text[i])
		if a.User != nil {
			fmt.Fprintf(&s, "user %p/%s ", a.User, a.User.Name())
		}
	}
	return s.String()
}
