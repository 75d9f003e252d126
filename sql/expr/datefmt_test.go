package expr

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDateFormatPatterns runs testdata/datefmt/patterns.txt: patterns, the instant
// each formats and the text SimpleDateFormat's documentation says it
// gives.
func TestDateFormatPatterns(t *testing.T) {
	f, err := os.Open("testdata/datefmt/patterns.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var at int64
	cases := 0
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if s, ok := strings.CutPrefix(text, "at "); ok {
			tm, err := time.Parse("2006-01-02 15:04:05.000", s)
			if err != nil {
				t.Fatalf("line %d: %v", line, err)
			}
			at = tm.UnixMilli()
			continue
		}
		pattern, want, ok := strings.Cut(text, " => ")
		if !ok {
			t.Fatalf("line %d: no ' => ' in %q", line, text)
		}
		cases++
		df, err := compileDateFormat(pattern)
		if wantErr, isErr := strings.CutPrefix(want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("line %d: %q: error %v, want one containing %q", line, pattern, err, wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("line %d: %q: %v", line, pattern, err)
			continue
		}
		if got := df.Format(at); got != want {
			t.Errorf("line %d: %q gives %q, want %q", line, pattern, got, want)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cases < 50 {
		t.Errorf("only %d cases", cases)
	}
}

// TestDateParseZones: TO_TIMESTAMP's reading of the pattern letters
// added with the zones: names and offsets are read and the offset
// applied (the result is the UTC wall clock), an era BC counts back from
// 1 BC, L reads as M.
func TestDateParseZones(t *testing.T) {
	at := func(s string) int64 {
		tm, err := time.Parse("2006-01-02 15:04:05.000", s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMilli()
	}
	for _, tc := range []struct {
		pattern, in string
		want        int64
		ok          bool
	}{
		{"yyyy-MM-dd HH:mm:ss z", "2024-06-01 22:30:00 UTC", at("2024-06-01 22:30:00.000"), true},
		{"yyyy-MM-dd HH:mm:ss zzzz", "2024-06-01 22:30:00 Coordinated Universal Time", at("2024-06-01 22:30:00.000"), true},
		{"yyyy-MM-dd'T'HH:mm:ssXXX", "2024-06-01T22:30:00+02:00", at("2024-06-01 20:30:00.000"), true},
		{"yyyy-MM-dd'T'HH:mm:ssXXX", "2024-06-01T22:30:00Z", at("2024-06-01 22:30:00.000"), true},
		{"yyyy-MM-dd'T'HH:mm:ssZ", "2024-06-01T22:30:00-0130", at("2024-06-02 00:00:00.000"), true},
		{"yyyyMMddHHmmssZ", "20240601223000+0000", at("2024-06-01 22:30:00.000"), true},
		{"yyyy-MM-dd HH:mm z", "2024-06-01 22:30 GMT+01:00", at("2024-06-01 21:30:00.000"), true},
		{"dd LLL yyyy G", "04 Jul 2001 AD", at("2001-07-04 00:00:00.000"), true},
		{"yyyy-LL-dd F", "2001-07-04 1", at("2001-07-04 00:00:00.000"), true},
		{"yyyy-MM-dd HH:mm z", "2024-06-01 22:30 +2400", 0, false},
		{"yyyy-MM-dd HH:mm z", "2024-06-01 22:30 CEST", 0, false},
		{"yyyy G", "2001 XX", 0, false},
	} {
		f, err := compileDateFormat(tc.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		got, ok := f.parse(tc.in)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("%q reads %q as %d, %v; want %d, %v", tc.pattern, tc.in, got, ok, tc.want, tc.ok)
		}
	}
	bc, err := compileDateFormat("yyyy-MM-dd G")
	if err != nil {
		t.Fatal(err)
	}
	ms, ok := bc.parse("0001-01-01 BC")
	if !ok || bc.Format(ms) != "0001-01-01 BC" || time.UnixMilli(ms).UTC().Year() != 0 {
		t.Errorf("1 BC: %d %v %q", ms, ok, bc.Format(ms))
	}
}
