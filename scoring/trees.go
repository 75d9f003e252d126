package scoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// Trees is a gradient-boosted tree ensemble: the margin is the base
// margin plus the sum of one leaf per tree, and the output is the margin
// or, for the logistic objectives, its sigmoid.
//
// A split node sends x to yes when x[f] < split_condition, to no
// otherwise and to missing when x[f] is missing (NaN). Like XGBoost, the
// comparison is done in float32 (XGBoost stores features and thresholds
// as 32-bit floats); leaves are summed in float64.
type Trees struct {
	names    []string
	nodes    []node
	roots    []int32
	base     float64 // base margin
	logistic bool
}

// node is one node of the flat arrays: a leaf when feature < 0.
type node struct {
	feature int32
	thresh  float32
	yes     int32
	no      int32
	missing int32
	leaf    float64
}

// Objectives Trees understands and how they turn base_score and the
// margin into the output. binary:logitraw, like XGBoost, takes base_score
// as a margin as it is (its ProbToMargin is the identity).
var objectives = map[string]struct{ logit, sigmoid bool }{
	"reg:squarederror": {},
	"reg:linear":       {},
	"reg:logistic":     {logit: true, sigmoid: true},
	"binary:logistic":  {logit: true, sigmoid: true},
	"binary:logitraw":  {},
}

// dumpNode is a node of XGBoost's JSON dump.
type dumpNode struct {
	NodeID         *int64      `json:"nodeid"`
	Depth          int64       `json:"depth"`
	Split          *string     `json:"split"`
	SplitCondition *float64    `json:"split_condition"`
	Yes            *int64      `json:"yes"`
	No             *int64      `json:"no"`
	Missing        *int64      `json:"missing"`
	Leaf           *float64    `json:"leaf"`
	Children       []*dumpNode `json:"children"`
}

// maxNodes bounds a model's nodes (a defence against huge inputs).
const maxNodes = 1 << 22

// ParseTrees decodes a tree ensemble. data is either a JSON array of
// trees (each an object, or a string holding one: the list that
// get_dump(dump_format="json") returns), with base_score 0.5 and
// objective reg:squarederror, or an object
//
//	{"base_score": 0.5, "objective": "binary:logistic", "trees": [...]}
//
// For reg:logistic and binary:logistic base_score is a probability and
// the base margin is its logit, as in XGBoost; for the others
// (binary:logitraw included) it is the base margin itself.
func ParseTrees(data []byte) (*Trees, error) {
	var doc struct {
		BaseScore *float64          `json:"base_score"`
		Objective string            `json:"objective"`
		Trees     []json.RawMessage `json:"trees"`
	}
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' {
		if err := json.Unmarshal(data, &doc.Trees); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrModel, err)
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("%w: %v (want {\"base_score\", \"objective\", \"trees\": [...]} or a list of trees)", ErrModel, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%w: data after the model's JSON object", ErrModel)
		}
	}
	if doc.Objective == "" {
		doc.Objective = "reg:squarederror"
	}
	obj, ok := objectives[doc.Objective]
	if !ok {
		return nil, fmt.Errorf("%w: objective %q is not supported; supported: reg:squarederror, reg:linear, reg:logistic, binary:logistic, binary:logitraw", ErrModel, doc.Objective)
	}
	if len(doc.Trees) == 0 {
		return nil, fmt.Errorf("%w: no trees", ErrModel)
	}
	base := 0.5
	if doc.BaseScore != nil {
		base = *doc.BaseScore
	}
	if math.IsNaN(base) || math.IsInf(base, 0) {
		return nil, fmt.Errorf("%w: base_score %v", ErrModel, base)
	}
	t := &Trees{base: base, logistic: obj.sigmoid}
	if obj.logit {
		if !(base > 0 && base < 1) {
			return nil, fmt.Errorf("%w: base_score %v must be a probability in (0, 1) for objective %s", ErrModel, base, doc.Objective)
		}
		t.base = math.Log(base / (1 - base))
	}
	feat := map[string]int32{}
	for i, raw := range doc.Trees {
		raw = bytes.TrimSpace(raw)
		if len(raw) > 0 && raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("%w: tree %d: %v", ErrModel, i, err)
			}
			raw = []byte(s)
		}
		var root dumpNode
		if err := json.Unmarshal(raw, &root); err != nil {
			return nil, fmt.Errorf("%w: tree %d: %v", ErrModel, i, err)
		}
		r, err := t.add(&root, feat, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: tree %d: %v", ErrModel, i, err)
		}
		t.roots = append(t.roots, r)
	}
	return t, nil
}

// add appends n's subtree to the flat arrays and returns n's index.
func (t *Trees) add(n *dumpNode, feat map[string]int32, depth int) (int32, error) {
	if n == nil {
		return 0, fmt.Errorf("null node")
	}
	if n.NodeID == nil {
		return 0, fmt.Errorf("a node without nodeid")
	}
	if depth > 256 {
		return 0, fmt.Errorf("deeper than 256 levels")
	}
	if len(t.nodes) >= maxNodes {
		return 0, fmt.Errorf("more than %d nodes", maxNodes)
	}
	idx := int32(len(t.nodes))
	if n.Leaf != nil {
		if n.Split != nil || len(n.Children) != 0 {
			return 0, fmt.Errorf("node %d has both a leaf and a split", *n.NodeID)
		}
		if math.IsNaN(*n.Leaf) || math.IsInf(*n.Leaf, 0) {
			return 0, fmt.Errorf("node %d: leaf %v", *n.NodeID, *n.Leaf)
		}
		t.nodes = append(t.nodes, node{feature: -1, leaf: *n.Leaf})
		return idx, nil
	}
	if n.Split == nil || *n.Split == "" || n.Yes == nil || n.No == nil {
		return 0, fmt.Errorf("node %d is neither a leaf (leaf) nor a split (split, split_condition, yes, no, children)", *n.NodeID)
	}
	if n.SplitCondition == nil {
		// Categorical splits (split_condition absent, "categories") are
		// not supported.
		return 0, fmt.Errorf("node %d: split on %q has no split_condition (categorical splits are not supported)", *n.NodeID, *n.Split)
	}
	f, ok := feat[*n.Split]
	if !ok {
		f = int32(len(t.names))
		feat[*n.Split] = f
		t.names = append(t.names, *n.Split)
	}
	t.nodes = append(t.nodes, node{feature: f, thresh: float32(*n.SplitCondition)})
	child := map[int64]int32{}
	for _, c := range n.Children {
		ci, err := t.add(c, feat, depth+1)
		if err != nil {
			return 0, err
		}
		if _, dup := child[*c.NodeID]; dup {
			return 0, fmt.Errorf("node %d has two children with nodeid %d", *n.NodeID, *c.NodeID)
		}
		child[*c.NodeID] = ci
	}
	ref := func(what string, id *int64) (int32, error) {
		if id == nil {
			return 0, fmt.Errorf("node %d has no %s", *n.NodeID, what)
		}
		ci, ok := child[*id]
		if !ok {
			return 0, fmt.Errorf("node %d: %s %d is not one of its children", *n.NodeID, what, *id)
		}
		return ci, nil
	}
	yes, err := ref("yes", n.Yes)
	if err != nil {
		return 0, err
	}
	no, err := ref("no", n.No)
	if err != nil {
		return 0, err
	}
	missing := yes
	if n.Missing != nil {
		if missing, err = ref("missing", n.Missing); err != nil {
			return 0, err
		}
	}
	nd := &t.nodes[idx]
	nd.yes, nd.no, nd.missing = yes, no, missing
	return idx, nil
}

// Features implements Model.
func (t *Trees) Features() []string { return t.names }

// Trees returns the number of trees.
func (t *Trees) Trees() int { return len(t.roots) }

// Margin returns the base margin plus the leaves x reaches.
func (t *Trees) Margin(x []float64) float64 {
	sum := t.base
	nodes := t.nodes
	for _, r := range t.roots {
		n := &nodes[r]
		for n.feature >= 0 {
			v := x[n.feature]
			switch {
			case v != v: // NaN: missing
				n = &nodes[n.missing]
			case float32(v) < n.thresh:
				n = &nodes[n.yes]
			default:
				n = &nodes[n.no]
			}
		}
		sum += n.leaf
	}
	return sum
}

// Predict implements Model.
func (t *Trees) Predict(x []float64) float64 {
	m := t.Margin(x)
	if t.logistic {
		return sigmoid(m)
	}
	return m
}
