package kafka

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var rewriteGroupScripts = flag.Bool("rewrite", false, "rewrite the expected output of testdata/groups scripts")

// TestGroupScripts replays the scripted interactions in testdata/groups
// against the group coordinator. A script is a sequence of
//
//	command args...
//	----
//	expected output
//
// blocks separated by blank lines. Commands:
//
//	join MEMBER|- [client=c] [instance=i] [protocols=p1,p2] [session=10s] [rebalance=30s] [v=4]
//	sync MEMBER gen=N [instance=i] [assign=m1:x,m2:y]
//	heartbeat MEMBER gen=N [instance=i]
//	commit MEMBER|- gen=N [instance=i] [txn]
//	leave MEMBER|MEMBER/INSTANCE|-/INSTANCE...
//	tick DURATION
//	describe
//
// After each command the output lists the command's immediate answer, then
// every answer delivered to an earlier blocked join or sync, by member.
// Run with -rewrite to regenerate expectations.
func TestGroupScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/groups/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			d := newGroupDriver()
			for _, block := range strings.Split(strings.TrimSpace(string(raw)), "\n\n") {
				cmd, want, _ := strings.Cut(block, "\n----\n")
				cmd = strings.TrimSpace(strings.TrimSuffix(cmd, "\n----"))
				if strings.HasPrefix(cmd, "#") && !strings.Contains(block, "\n----") {
					out.WriteString(cmd + "\n\n") // a comment block
					continue
				}
				got := d.run(t, cmd)
				if !*rewriteGroupScripts && strings.TrimSpace(want) != strings.TrimSpace(got) {
					t.Errorf("%s: %s\ngot:\n%s\nwant:\n%s", file, cmd, got, want)
				}
				fmt.Fprintf(&out, "%s\n----\n%s\n\n", cmd, strings.TrimSpace(got))
			}
			if *rewriteGroupScripts {
				if err := os.WriteFile(file, []byte(strings.TrimSpace(out.String())+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

type groupDriver struct {
	c     *groupCoordinator
	now   time.Time
	joins map[string]<-chan joinResult
	syncs map[string]<-chan syncResult
}

func newGroupDriver() *groupDriver {
	counts := map[string]int{}
	return &groupDriver{
		now: time.Unix(0, 0),
		c: newGroupCoordinator(func(client string) string {
			counts[client]++
			return fmt.Sprintf("%s-%d", client, counts[client])
		}),
		joins: map[string]<-chan joinResult{},
		syncs: map[string]<-chan syncResult{},
	}
}

func codeName(code int16) string {
	if code == 0 {
		return "OK"
	}
	if e := kerr.ErrorForCode(code); e != nil {
		return e.(*kerr.Error).Message
	}
	return strconv.Itoa(int(code))
}

func fmtJoin(r joinResult) string {
	if r.ErrorCode != 0 {
		return fmt.Sprintf("%s member=%s", codeName(r.ErrorCode), r.MemberID)
	}
	s := fmt.Sprintf("gen=%d leader=%s protocol=%s", r.Generation, r.LeaderID, r.Protocol)
	if len(r.Members) > 0 {
		var ids []string
		for _, m := range r.Members {
			ids = append(ids, m.MemberID)
		}
		s += " members=" + strings.Join(ids, ",")
	}
	if r.SkipAssignment {
		s += " skip-assignment"
	}
	return s
}

func fmtSync(r syncResult) string {
	if r.ErrorCode != 0 {
		return codeName(r.ErrorCode)
	}
	return fmt.Sprintf("assignment=%q", r.Assignment)
}

func (d *groupDriver) run(t *testing.T, cmd string) string {
	fields := strings.Fields(cmd)
	args := map[string]string{}
	var pos []string
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			args[k] = v
		} else {
			pos = append(pos, f)
		}
	}
	dur := func(k, def string) time.Duration {
		v := args[k]
		if v == "" {
			v = def
		}
		x, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return x
	}
	gen := func() int32 {
		g, err := strconv.Atoi(args["gen"])
		if err != nil {
			t.Fatalf("%s: gen: %v", cmd, err)
		}
		return int32(g)
	}
	var instance *string
	if v, ok := args["instance"]; ok {
		instance = &v
	}
	var out []string
	switch fields[0] {
	case "join":
		member := pos[0]
		if member == "-" {
			member = ""
		}
		client := args["client"]
		if client == "" {
			client = "c"
		}
		protocols := "range"
		if p, ok := args["protocols"]; ok {
			protocols = p
		}
		var ps []kmsg.JoinGroupRequestProtocol
		for _, p := range strings.Split(protocols, ",") {
			ps = append(ps, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: []byte(p)})
		}
		v, _ := strconv.Atoi(args["v"])
		if args["v"] == "" {
			v = 4
		}
		ch := d.c.Join(d.now, joinParams{Group: "g", MemberID: member, InstanceID: instance, ClientID: client, ProtocolType: "consumer", Protocols: ps,
			SessionTimeout: dur("session", "10s"), RebalanceTimeout: dur("rebalance", "30s"), RequireKnownMemberID: v >= 4, SkipAssignment: v >= 9})
		select {
		case r := <-ch:
			out = append(out, fmtJoin(r))
		default:
			out = append(out, "waiting")
			key := member
			if key == "" {
				key = "(new " + client + ")"
			}
			d.joins[key] = ch
		}
	case "sync":
		var as []kmsg.SyncGroupRequestGroupAssignment
		if a := args["assign"]; a != "" {
			for _, kv := range strings.Split(a, ",") {
				m, x, _ := strings.Cut(kv, ":")
				as = append(as, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte(x)})
			}
		}
		ch := d.c.Sync(d.now, syncParams{Group: "g", MemberID: pos[0], InstanceID: instance, Generation: gen(), Assignments: as})
		select {
		case r := <-ch:
			out = append(out, fmtSync(r))
		default:
			out = append(out, "waiting")
			d.syncs[pos[0]] = ch
		}
	case "heartbeat":
		out = append(out, codeName(d.c.Heartbeat(d.now, "g", pos[0], instance, gen())))
	case "commit":
		member := pos[0]
		if member == "-" {
			member = ""
		}
		txn := slices.Contains(pos[1:], "txn")
		out = append(out, codeName(d.c.ValidateCommit(d.now, "g", member, instance, gen(), txn)))
	case "leave":
		var ms []leaveMember
		for _, p := range pos {
			id, inst, ok := strings.Cut(p, "/")
			if id == "-" {
				id = ""
			}
			lm := leaveMember{MemberID: id}
			if ok {
				lm.InstanceID = &inst
			}
			ms = append(ms, lm)
		}
		for i, code := range d.c.Leave(d.now, "g", ms) {
			out = append(out, pos[i]+": "+codeName(code))
		}
	case "tick":
		d.now = d.now.Add(dur("", pos[0]))
		d.c.Tick(d.now)
		out = append(out, "now="+d.now.Sub(time.Unix(0, 0)).String())
	case "describe":
		s, _ := d.c.Describe("g")
		line := fmt.Sprintf("state=%s gen=%d protocol=%s", s.State, s.Generation, s.Protocol)
		for _, m := range s.Members {
			line += fmt.Sprintf("\n  %s assignment=%q", m.MemberID, m.MemberAssignment)
		}
		out = append(out, line)
	default:
		t.Fatalf("unknown command %q", fields[0])
	}
	// Answers delivered to earlier blocked calls.
	for _, m := range sortedKeys(d.joins) {
		select {
		case r := <-d.joins[m]:
			out = append(out, fmt.Sprintf("-> join %s: %s", m, fmtJoin(r)))
			delete(d.joins, m)
		default:
		}
	}
	for _, m := range sortedKeys(d.syncs) {
		select {
		case r := <-d.syncs[m]:
			out = append(out, fmt.Sprintf("-> sync %s: %s", m, fmtSync(r)))
			delete(d.syncs, m)
		default:
		}
	}
	return strings.Join(out, "\n")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
