package expr

import (
	"regexp"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/types"
)

// Nexmark bid columns: auction, bidder, price, channel, url, dateTime, extra.
var bidScope = &testScope{
	names: []string{"auction", "bidder", "price", "channel", "url", "dateTime", "extra"},
	types: []types.Type{types.TBigInt, types.TBigInt, types.TBigInt, types.TVarchar, types.TVarchar, types.TTimestamp, types.TVarchar},
}

func bidRow(i int) []row.Value {
	return []row.Value{
		row.Int(int64(1000 + i%100)), row.Int(int64(2000 + i%37)), row.Int(int64(1000000 + i*7919%90000000)),
		row.String([]string{"Apple", "Google", "Facebook", "Baidu", "other"}[i%5]),
		row.String("https://www.nexmark.com/a/b/item.htm?query=1&channel_id=" + []string{"123", "4567", "89"}[i%3]),
		row.Timestamp(1436965509123 + int64(i)*3_600_000/7), row.String(""),
	}
}

func benchExpr(b *testing.B, src string) {
	c := &Compiler{}
	x := mustCompile(b, c, src, bidScope)
	rows := make([][]row.Value, 64)
	for i := range rows {
		rows[i] = bidRow(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = x.Eval(rows[i&63])
	}
}

// Nexmark q14's projection and filter.
func BenchmarkQ14CaseHour(b *testing.B) {
	benchExpr(b, `CASE WHEN HOUR(dateTime) >= 8 AND HOUR(dateTime) <= 18 THEN 'dayTime'
		WHEN HOUR(dateTime) <= 6 OR HOUR(dateTime) >= 20 THEN 'nightTime' ELSE 'otherTime' END`)
}

func BenchmarkQ14Price(b *testing.B) { benchExpr(b, `0.908 * price`) }

func BenchmarkQ14Filter(b *testing.B) {
	benchExpr(b, `0.908 * price > 1000000 AND 0.908 * price < 50000000`)
}

// Nexmark q21's channel id.
func BenchmarkQ21RegexpExtract(b *testing.B) {
	benchExpr(b, `REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2)`)
}

func BenchmarkQ21Case(b *testing.B) {
	benchExpr(b, `CASE WHEN LOWER(channel) = 'apple' THEN '0' WHEN LOWER(channel) = 'google' THEN '1'
		WHEN LOWER(channel) = 'facebook' THEN '2' WHEN LOWER(channel) = 'baidu' THEN '3'
		ELSE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) END`)
}

// Nexmark q15-q17's day and minute.
func BenchmarkDateFormatDay(b *testing.B)    { benchExpr(b, `DATE_FORMAT(dateTime, 'yyyy-MM-dd')`) }
func BenchmarkDateFormatMinute(b *testing.B) { benchExpr(b, `DATE_FORMAT(dateTime, 'HH:mm')`) }
func BenchmarkLikePrefix(b *testing.B)       { benchExpr(b, `url LIKE 'https://%channel_id=1%'`) }

// The q21 pattern through Go's regexp alone, for comparison with
// BenchmarkQ21RegexpExtract.
func BenchmarkQ21PlainRegexp(b *testing.B) {
	re := regexp.MustCompile(`(&|^)channel_id=([^&]*)`)
	url := bidRow(0)[4].AsString()
	for i := 0; i < b.N; i++ {
		_ = re.FindStringSubmatchIndex(url)
	}
}
