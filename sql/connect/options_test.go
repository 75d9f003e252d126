package connect

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/sql/types"
)

var update = flag.Bool("update", false, "rewrite the expected errors in testdata/")

type optionCase struct {
	Sink     bool    `json:"sink,omitempty"`
	Updating bool    `json:"updating,omitempty"`
	Options  Options `json:"options"`
	Error    string  `json:"error"`
}

// TestBadOptions opens each table of testdata/bad_options.json and checks
// the exact error it gets (go test -update rewrites them for review).
func TestBadOptions(t *testing.T) {
	path := filepath.Join("testdata", "bad_options.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []optionCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	cols := []Column{{Name: "id", Type: types.TBigInt}}
	for i := range cases {
		c := &cases[i]
		tcols := cols
		if c.Options["connector"] == "nexmark" {
			tcols = datagenColumns()
		}
		if c.Sink {
			_, err = OpenSink(SinkTable{Name: "t", Columns: tcols, Options: c.Options, Updating: c.Updating}, Env{})
		} else {
			_, _, err = OpenSource(SourceTable{Name: "t", Columns: tcols, Options: c.Options}, Env{})
		}
		got := ""
		if err != nil {
			got = err.Error()
		}
		if *update {
			c.Error = got
			continue
		}
		if got != c.Error {
			t.Errorf("case %d %v:\n got %q\nwant %q", i, c.Options, got, c.Error)
		}
	}
	if *update {
		out, _ := json.MarshalIndent(cases, "", "  ")
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAcceptsUpdates(t *testing.T) {
	for _, c := range []struct {
		conn string
		pk   []int
		want bool
	}{
		{"print", nil, true}, {"stdout", nil, true}, {"blackhole", nil, true}, {"upsert-kafka", []int{0}, true},
		{"upsert-kafka", nil, false}, {"postgres", []int{0}, true}, {"jdbc", nil, false}, {"kafka", []int{0}, false},
		{"filesystem", nil, false}, {"file", []int{0}, false},
	} {
		got, err := AcceptsUpdates(Options{"connector": c.conn}, c.pk)
		if err != nil || got != c.want {
			t.Errorf("%s pk %v: %v, %v", c.conn, c.pk, got, err)
		}
	}
	if _, err := AcceptsUpdates(Options{"connector": "nope"}, nil); err == nil {
		t.Fatal("unknown connector accepted")
	}
	want := "sink nexmark_q4 (connector 'file') is append-only but the query produces updates (GROUP BY without a window); use a sink that accepts updates: 'postgres' with a PRIMARY KEY, 'upsert-kafka', 'stdout' or 'print'"
	if got := ErrAppendOnly("nexmark_q4", Options{"connector": "file"}, "GROUP BY without a window").Error(); got != want {
		t.Fatalf("got %s", got)
	}
}
