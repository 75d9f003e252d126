package logsrc_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/logsrc"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/stream"
)

// Copy a topic of the embedded log into another, upper-casing the values,
// as a bounded job: it reads what the topic holds when it starts and ends.
func Example() {
	dir, _ := os.MkdirTemp("", "logsrc-example")
	defer os.RemoveAll(dir)
	l, err := logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	l.CreateTopic("words", logstore.TopicConfig{Partitions: 2})
	in, _ := logsrc.NewSink(l, logsrc.SinkConfig{Topic: "words"})
	w, _ := in.Open(context.Background(), stream.SubtaskInfo{})
	w.Write(context.Background(), []connector.Message{{Key: []byte("a"), Value: []byte("alpha")}, {Key: []byte("b"), Value: []byte("beta")}})

	src, _ := logsrc.NewSource(l, logsrc.SourceConfig{Topic: "words", Bounded: true})
	out, _ := logsrc.NewSink(l, logsrc.SinkConfig{Topic: "shout", CreatePartitions: 1})
	env := stream.New(stream.WithParallelism(2))
	upper := stream.Map(stream.FromSource(env, "words", stream.Source[connector.Message](src), stream.WatermarkStrategy[connector.Message]{}),
		func(m connector.Message) connector.Message {
			m.Value = []byte(fmt.Sprintf("%s!", m.Value))
			return m
		})
	stream.To(upper, stream.Sink[connector.Message](out))
	if err := env.Execute(context.Background()); err != nil {
		fmt.Println(err)
		return
	}

	check, _ := logsrc.NewSource(l, logsrc.SourceConfig{Topic: "shout", Bounded: true})
	env = stream.New()
	got := stream.Collect(stream.FromSource(env, "shout", stream.Source[connector.Message](check), stream.WatermarkStrategy[connector.Message]{}))
	env.Execute(context.Background())
	var vals []string
	for _, m := range got.Values() {
		vals = append(vals, string(m.Value))
	}
	slices.Sort(vals)
	fmt.Println(vals)
	// Output: [alpha! beta!]
}
