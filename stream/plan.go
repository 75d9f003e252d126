package stream

import (
	"fmt"
	"strings"
)

// Plan is the physical plan of a dataflow: its operators with their
// parallelism and the chains they run in, and the exchanges between them,
// as the runtime executes them. It is what EXPLAIN prints and what the
// dashboard draws. Plans are deterministic (nodes in the order the graph
// was built, edges in the order of their target's inputs) and marshal to
// JSON.
type Plan struct {
	Nodes []PlanNode `json:"nodes"`
	Edges []PlanEdge `json:"edges"`
	// Resolved is true for the plan of a started job (Job.Plan): every
	// source's parallelism is its number of splits. Before Start
	// (Env.Plan) sources are assumed to run with the Env's default
	// parallelism, and what depends on it (inherited parallelism, forward
	// or rebalance exchanges, chaining) may change at Start.
	Resolved bool `json:"resolved"`
	// MaxParallelism is the number of key groups of keyed state.
	MaxParallelism int `json:"max_parallelism"`
}

// PlanNode is one operator of a Plan.
type PlanNode struct {
	// ID is the operator's index in Plan.Nodes; edges refer to it.
	ID int `json:"id"`
	// Name is the operator's name, as in SubtaskMetrics.Operator.
	Name string `json:"name"`
	// Kind is what the operator does: "source", "map", "filter",
	// "flatmap", "union", "coflatmap", "keyed-process",
	// "window-aggregate", "window-reduce", "window-process", "sink", or
	// the kind of another keyed operator (joins are keyed two-input
	// operators).
	Kind        string `json:"kind"`
	Parallelism int    `json:"parallelism"`
	// Keyed is true when the operator keeps keyed state, partitioned by
	// key group over its subtasks.
	Keyed bool `json:"keyed,omitempty"`
	// Chain is the ID of the operator at the head of the chain this one
	// runs in: operators with the same Chain run fused, one goroutine per
	// subtask, calling each other directly. An operator heads its own
	// chain when Chain == ID (sources and operators fed through queues).
	Chain int `json:"chain"`
	// Task is the name of the chain's head, as in SubtaskMetrics.Task.
	Task string `json:"task"`
}

// PlanEdge is a connection from one operator's output to another's input.
type PlanEdge struct {
	From int `json:"from"`
	To   int `json:"to"`
	// Partitioning says which subtasks of To receive a record of a
	// subtask of From: "forward" (the subtask of the same index),
	// "hash" (by key group), "rebalance" (round robin by batch) or
	// "broadcast" (all).
	Partitioning string `json:"partitioning"`
	// Chained is true when To runs in From's goroutine (a direct call,
	// no queue); otherwise records cross a bounded queue.
	Chained bool `json:"chained"`
	// Input is which input of To the edge feeds: 0, or 1 for the second
	// input of a two-input operator (CoFlatMap, joins).
	Input int `json:"input"`
	// SideOutput names the side output of From the edge leaves from;
	// empty for the main output.
	SideOutput string `json:"side_output,omitempty"`
}

// layout is the physical plan decided for the sources' current
// parallelism: each node's parallelism, each input edge's exchange, and
// whether the node runs chained to its input.
type layout struct {
	par     []int
	part    [][]partitioning // by node, by input edge
	chained []bool
}

// layout decides parallelism, exchanges and chaining from the graph as
// built, taking each source's parallelism as its node's current one (its
// number of splits once resolved). It does not modify the graph.
func (e *Env) layout() layout {
	l := layout{par: make([]int, len(e.nodes)), part: make([][]partitioning, len(e.nodes)), chained: make([]bool, len(e.nodes))}
	for _, n := range e.nodes {
		par := n.par
		if n.inherit && len(n.inputs) > 0 {
			par = l.par[n.inputs[0].from.id]
		}
		l.par[n.id] = par
		parts := make([]partitioning, len(n.inputs))
		for i, in := range n.inputs {
			p := in.part
			from := l.par[in.from.id]
			if p == partForward && from != par {
				p = partRebalance
			}
			// Hashing from one subtask to one subtask delivers everything
			// to it in order: the edge is a forward one, and an
			// event-time window operator joins its input's chain.
			// Operators with processing-time timers keep the exchange,
			// whose gate fires timers on time (a source's goroutine
			// checks them only between reads), and an explicit Rebalance
			// or Broadcast stays an exchange: it is how a user puts an
			// operator on a goroutine of its own.
			if p == partHash && from == 1 && par == 1 && n.fuseKeyed {
				p = partForward
			}
			parts[i] = p
		}
		l.part[n.id] = parts
		l.chained[n.id] = !n.source && !n.twoInputs && !n.ownTask && len(n.inputs) == 1 && parts[0] == partForward
	}
	return l
}

// plan describes layout l of the graph.
func (e *Env) plan(l layout, resolved bool) Plan {
	p := Plan{Nodes: make([]PlanNode, len(e.nodes)), Edges: []PlanEdge{}, Resolved: resolved, MaxParallelism: e.cfg.maxParallelism}
	for _, n := range e.nodes {
		chain := n.id
		if l.chained[n.id] {
			chain = p.Nodes[n.inputs[0].from.id].Chain
		}
		p.Nodes[n.id] = PlanNode{ID: n.id, Name: n.name, Kind: n.kind, Parallelism: l.par[n.id], Keyed: n.keyed, Chain: chain, Task: e.nodes[chain].name}
		for i, in := range n.inputs {
			ed := PlanEdge{From: in.from.id, To: n.id, Partitioning: l.part[n.id][i].String(), Chained: l.chained[n.id], Input: in.input}
			if ti, ok := in.from.ports[in.port].tag.(*tagInfo); ok && ti != nil {
				ed.SideOutput = ti.name
			}
			p.Edges = append(p.Edges, ed)
		}
	}
	return p
}

// Plan returns the physical plan of the dataflow as built so far. Before
// Start the sources' splits are not known: each source is assumed to run
// with the Env's default parallelism (Plan.Resolved is false); the plan a
// job runs is Job.Plan. Plan must not be called concurrently with building
// the graph or with Execute.
func (e *Env) Plan() Plan { return e.plan(e.layout(), e.started) }

// Plan returns the physical plan the job runs, with the sources'
// parallelism resolved from their splits. Under Execute's restarts it is
// the plan of the run this Job is.
func (j *Job) Plan() Plan { return j.plan.clone() }

func (p Plan) clone() Plan {
	p.Nodes = append([]PlanNode(nil), p.Nodes...)
	p.Edges = append([]PlanEdge(nil), p.Edges...)
	return p
}

// Text prints the plan as an indented tree in the manner of an EXPLAIN:
// one tree per operator without outputs (the sinks), each operator's
// inputs indented under it, every line saying the exchange the records
// take into the operator above it. An operator that feeds several others
// (a fan-out) is printed in full once and referred to by its id after.
// A list of the tasks (chains) follows.
func (p Plan) Text() string {
	var b strings.Builder
	if p.Resolved {
		b.WriteString("== Physical plan ==\n")
	} else {
		b.WriteString("== Physical plan (before start: sources assumed at the default parallelism) ==\n")
	}
	ins := make([][]PlanEdge, len(p.Nodes))
	hasOut := make([]bool, len(p.Nodes))
	for _, e := range p.Edges {
		ins[e.To] = append(ins[e.To], e)
		hasOut[e.From] = true
	}
	shown := make([]bool, len(p.Nodes))
	// Children are drawn as in Flink's EXPLAIN: ":- " before an input
	// followed by others, "+- " before the last.
	var walk func(id int, edge string, indent string, root, last bool)
	walk = func(id int, edge string, indent string, root, last bool) {
		n := p.Nodes[id]
		child := indent
		if !root {
			b.WriteString(indent)
			if last {
				b.WriteString("+- ")
				child += "   "
			} else {
				b.WriteString(":- ")
				child += ":  "
			}
			b.WriteString(edge)
			b.WriteString(": ")
		}
		fmt.Fprintf(&b, "#%d %s %q parallelism=%d", n.ID, n.Kind, n.Name, n.Parallelism)
		if shown[id] {
			b.WriteString(" (shown above)\n")
			return
		}
		shown[id] = true
		if n.Keyed {
			b.WriteString(" keyed")
		}
		if n.Chain != n.ID {
			fmt.Fprintf(&b, " in task #%d", n.Chain)
		}
		b.WriteByte('\n')
		for i, e := range ins[id] {
			walk(e.From, edgeLabel(e), child, false, i == len(ins[id])-1)
		}
	}
	for _, n := range p.Nodes {
		if !hasOut[n.ID] {
			walk(n.ID, "", "", true, true)
		}
	}
	// Anything not reached (cannot happen in a graph whose every operator
	// leads to one without outputs) is printed rather than hidden.
	for _, n := range p.Nodes {
		if !shown[n.ID] {
			walk(n.ID, "", "", true, true)
		}
	}
	b.WriteString("== Tasks ==\n")
	for _, head := range p.Nodes {
		if head.Chain != head.ID {
			continue
		}
		var ops []string
		for _, n := range p.Nodes {
			if n.Chain == head.ID {
				ops = append(ops, fmt.Sprintf("#%d %s %q", n.ID, n.Kind, n.Name))
			}
		}
		// Operators join a chain after their input: ids are in the
		// order of the chain's calls.
		fmt.Fprintf(&b, "task #%d x%d: %s\n", head.ID, head.Parallelism, strings.Join(ops, ", "))
	}
	return b.String()
}

// edgeLabel describes the exchange of e: its partitioning, "chained"
// when it is a direct call, and which input or side output it is.
func edgeLabel(e PlanEdge) string {
	s := e.Partitioning
	if e.Chained {
		s += " chained"
	}
	if e.Input != 0 {
		s += fmt.Sprintf(" input=%d", e.Input)
	}
	if e.SideOutput != "" {
		s += fmt.Sprintf(" side-output=%q", e.SideOutput)
	}
	return s
}

// Dot prints the plan in Graphviz's dot language: one box per operator
// labelled with its kind, name and parallelism, operators of one chain in
// a cluster, edges labelled with their exchange.
func (p Plan) Dot() string {
	var b strings.Builder
	b.WriteString("digraph plan {\n  rankdir=LR;\n  node [shape=box];\n")
	for _, head := range p.Nodes {
		if head.Chain != head.ID {
			continue
		}
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=%q;\n", head.ID, fmt.Sprintf("task #%d x%d", head.ID, head.Parallelism))
		for _, n := range p.Nodes {
			if n.Chain == head.ID {
				fmt.Fprintf(&b, "    n%d [label=%q];\n", n.ID, fmt.Sprintf("%s %s\np=%d", n.Kind, n.Name, n.Parallelism))
			}
		}
		b.WriteString("  }\n")
	}
	for _, e := range p.Edges {
		fmt.Fprintf(&b, "  n%d -> n%d [label=%q];\n", e.From, e.To, edgeLabel(e))
	}
	b.WriteString("}\n")
	return b.String()
}
