package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/ttlcache"
	"github.com/sluicehq/sluice/row"
)

// TestEnrichCacheTTLFromCall: a cached answer is served for ttl after
// its call went out, not after it came back: a service that takes 30s
// to answer must not make a 1m cache serve an answer given 89s earlier.
// Before, the entry was stamped when the answer arrived.
func TestEnrichCacheTTLFromCall(t *testing.T) {
	var (
		mu    sync.Mutex
		now   = time.Unix(1000, 0)
		calls int
	)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		fmt.Fprintf(w, `{"call":%d}`, n) // read when the call arrives
		advance(30 * time.Second)        // then the answer takes 30s
	}))
	defer srv.Close()
	const ttl = time.Minute
	in, err := row.NewSchema(row.Field{Name: "user"})
	if err != nil {
		t.Fatal(err)
	}
	spec := &EnrichSpec{HTTP: &EnrichHTTPSpec{URL: srv.URL + "/u/{user}", Method: http.MethodGet}, Into: "p"}
	x := &enrichRun{plan: &enrichPlan{spec: spec, into: 1, outLen: func() int { return 2 }}, in: in, method: http.MethodGet, client: srv.Client(), now: clock}
	if x.url, err = compileURLTemplate(spec.HTTP.URL, in, false); err != nil {
		t.Fatal(err)
	}
	if x.cache, err = ttlcache.New[string](10, ttl, clock); err != nil {
		t.Fatal(err)
	}
	r := row.Row{Vals: []row.Value{row.String("a")}}
	sent := clock()
	if _, err := x.one(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	advance(ttl - clock().Sub(sent)) // ttl after the call went out
	out, err := x.one(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Vals[1].AsString(); got != `{"call":2}` {
		t.Errorf("ttl after the first call: answer %s, want a second call's", got)
	}
}

// TestEnrichAnswerTooLarge: an answer beyond the 16 MiB the step reads
// fails with an error saying so, not with "the answer is not JSON" (the
// truncated prefix of a valid document).
func TestEnrichAnswerTooLarge(t *testing.T) {
	big := `{"pad":"` + strings.Repeat("x", 17<<20) + `"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, big)
	}))
	defer srv.Close()
	x := &enrichRun{method: http.MethodGet, client: srv.Client()}
	_, err := x.do(context.Background(), enrichRequest{url: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err %v, want one saying the answer is too large", err)
	}
}
