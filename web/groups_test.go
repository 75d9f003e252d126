package web

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/observe"
)

// TestAPIGroupMembers checks the JSON of the group endpoints once a group
// source reports live members: state, members with their decoded
// assignments, and each committed partition's owner.
func TestAPIGroupMembers(t *testing.T) {
	l := openLog(t)
	offs, err := logstore.OpenOffsetStore(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"billing", "idle"} {
		if err := offs.Commit(context.Background(), g, map[logstore.TopicPartition]logstore.CommittedOffset{
			{Topic: "clicks", Partition: 0}: {Offset: 1, LeaderEpoch: -1},
			{Topic: "clicks", Partition: 1}: {Offset: 2, LeaderEpoch: -1},
		}); err != nil {
			t.Fatal(err)
		}
	}
	o := observe.New(observe.Options{Log: l, Offsets: offs})
	o.SetGroupSource(func() []observe.LiveGroup {
		return []observe.LiveGroup{
			{Name: "billing", State: "Stable", ProtocolType: "consumer", Protocol: "range", Generation: 3, Members: []observe.GroupMember{
				{MemberID: "m-1", ClientID: "biller", ClientHost: "/127.0.0.1", Subscription: []string{"clicks"},
					Assignment: []observe.MemberAssignment{{Topic: "clicks", Partitions: []int32{1}}}},
				{MemberID: "m-2", ClientID: "biller", ClientHost: "/127.0.0.2", Subscription: []string{"clicks"},
					Assignment: []observe.MemberAssignment{{Topic: "clicks", Partitions: []int32{0}}}},
			}},
			{Name: "fresh", State: "PreparingRebalance", ProtocolType: "consumer", Members: []observe.GroupMember{
				{MemberID: "m-3", ClientID: "new", ClientHost: "/127.0.0.3", DecodeError: "consumer member metadata of 1 bytes: not enough data"},
			}},
		}
	})
	s, err := New(Config{Addr: "127.0.0.1:0", Token: "tok", Observer: o}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, s)
	o.Sample()

	var list []map[string]any
	if code := getJSON(t, base+"/api/v1/groups", "tok", &list); code != http.StatusOK {
		t.Fatalf("groups: %d", code)
	}
	wantList := []map[string]any{
		{"name": "billing", "state": "Stable", "members": 2.0, "partitions": 2.0, "total_lag": 10.0},
		{"name": "fresh", "state": "PreparingRebalance", "members": 1.0, "partitions": 0.0, "total_lag": 0.0},
		{"name": "idle", "state": "Empty", "members": 0.0, "partitions": 2.0, "total_lag": 10.0},
	}
	if !reflect.DeepEqual(list, wantList) {
		t.Fatalf("groups\n%v\nwant\n%v", list, wantList)
	}

	var billing map[string]any
	if code := getJSON(t, base+"/api/v1/groups/billing", "tok", &billing); code != http.StatusOK {
		t.Fatalf("group: %d", code)
	}
	want := `{"generation":3,` +
		`"members":[{"assignment":[{"partitions":[1],"topic":"clicks"}],"client_host":"/127.0.0.1","client_id":"biller","member_id":"m-1","subscription":["clicks"]},` +
		`{"assignment":[{"partitions":[0],"topic":"clicks"}],"client_host":"/127.0.0.2","client_id":"biller","member_id":"m-2","subscription":["clicks"]}],` +
		`"partitions":[{"commit_time_ms":0,"committed_offset":1,"known":true,"lag":4,"latest_offset":5,"member":"m-2","partition":0,"topic":"clicks"},` +
		`{"commit_time_ms":0,"committed_offset":2,"known":true,"lag":6,"latest_offset":8,"member":"m-1","partition":1,"topic":"clicks"}],` +
		`"state":"Stable"}`
	// Commit times are the commits' own: compare without them.
	var parts []map[string]any
	json.Unmarshal(mustJSON(t, billing["partitions"]), &parts)
	for _, p := range parts {
		if p["commit_time_ms"].(float64) <= 0 {
			t.Fatalf("partition without commit time: %v", p)
		}
		p["commit_time_ms"] = 0
	}
	got, _ := json.Marshal(map[string]any{"members": billing["members"], "partitions": parts, "state": billing["state"], "generation": billing["generation"]})
	if string(got) != want {
		t.Fatalf("group billing\n%s\nwant\n%s", got, want)
	}

	var fresh observe.GroupStatus
	if code := getJSON(t, base+"/api/v1/groups/fresh", "tok", &fresh); code != http.StatusOK || len(fresh.Members) != 1 ||
		fresh.Members[0].DecodeError == "" || fresh.Members[0].Assignment == nil || fresh.Members[0].Subscription == nil {
		t.Fatalf("group fresh %d %+v", code, fresh)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
