package http_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"strings"

	"github.com/sluicehq/sluice/connector"
	ingest "github.com/sluicehq/sluice/connector/http"
	"github.com/sluicehq/sluice/stream"
)

// An ingest endpoint feeding a job: clients POST JSON lines, the job sees
// one message per record, and Stop ends the job once everything is in.
func Example() {
	src, err := ingest.NewSource(ingest.Config{Addr: "127.0.0.1:0", Rate: 10000, Shedding: ingest.Reject, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := src.Listen(); err != nil {
		fmt.Println(err)
		return
	}
	env := stream.New(stream.WithParallelism(1))
	got := stream.Collect(stream.FromSource(env, "ingest", stream.Source[connector.Message](src), stream.WatermarkStrategy[connector.Message]{}))
	job, err := env.Start(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := nethttp.Post("http://"+src.Addr()+"/ingest", "application/x-ndjson",
		strings.NewReader("{\"user\":\"ann\",\"amount\":3}\n{\"user\":\"bob\",\"amount\":5}\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Print(res.StatusCode, " ", string(answer))
	src.Stop()
	if err := job.Wait(); err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range got.Values() {
		fmt.Println(string(m.Value))
	}
	// Output:
	// 200 {"accepted":2,"shed":0}
	// {"user":"ann","amount":3}
	// {"user":"bob","amount":5}
}
