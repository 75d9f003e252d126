package generate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/sluicehq/sluice/connector"
)

func TestBoundedDeterministic(t *testing.T) {
	for _, preset := range []string{Clickstream, Orders, Sequence} {
		read := func(splits int) map[int64]string {
			src, err := New(Config{Preset: preset, Count: 1000, Seed: 3, Start: 1000, Splits: splits})
			if err != nil {
				t.Fatal(err)
			}
			sp, _ := src.Splits(context.Background(), 8)
			if len(sp) != splits {
				t.Fatalf("%d splits", len(sp))
			}
			out := map[int64]string{}
			buf := make([]connector.Message, 64)
			for _, s := range sp {
				for {
					n, err := s.Read(context.Background(), buf)
					for _, m := range buf[:n] {
						var v map[string]any
						if err := json.Unmarshal(m.Value, &v); err != nil {
							t.Fatalf("%s: %q: %v", preset, m.Value, err)
						}
						if int64(v["ts"].(float64)) != 1000+m.Offset || m.Timestamp != 1000+m.Offset {
							t.Fatalf("%s: record %d has ts %v", preset, m.Offset, v["ts"])
						}
						out[m.Offset] = string(m.Value)
					}
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			return out
		}
		a, b := read(1), read(3)
		if len(a) != 1000 || len(b) != 1000 {
			t.Fatalf("%s: %d and %d records", preset, len(a), len(b))
		}
		for i, v := range a {
			if b[i] != v {
				t.Fatalf("%s: record %d differs with 3 splits: %s vs %s", preset, i, v, b[i])
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{{Preset: "x"}, {Count: -1}, {Rate: -1}} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestSeek(t *testing.T) {
	src, _ := New(Config{Count: 10, Start: 1})
	sp, _ := src.Splits(context.Background(), 1)
	buf := make([]connector.Message, 4)
	sp[0].Read(context.Background(), buf)
	pos := sp[0].Position()
	sp2, _ := src.Splits(context.Background(), 1)
	if err := sp2[0].Seek(pos); err != nil {
		t.Fatal(err)
	}
	n, _ := sp2[0].Read(context.Background(), buf)
	if n != 4 || buf[0].Offset != 4 {
		t.Fatalf("resumed at %d (%d records)", buf[0].Offset, n)
	}
}
