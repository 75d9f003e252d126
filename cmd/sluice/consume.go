package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"
)

func consumeCommand() *command {
	return &command{name: "consume", summary: "print a topic's records", run: consumeRun}
}

func consumeRun(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice consume", "TOPIC [--from earliest|latest|OFFSET|RFC3339-time] [-n N] [-e] [--group G] [--format value|json]")
	var bf backendFlags
	bf.register(c, fs)
	from := fs.String("from", "earliest", "where to start: earliest, latest, an OFFSET (every partition), or an RFC 3339 time (first record at or after it); a --group's committed offsets take precedence")
	n := fs.Int("n", 0, "stop after N records (0: no limit)")
	var exitAtEnd bool
	fs.BoolVar(&exitAtEnd, "e", false, "exit once the end of every partition (as of the start) is reached")
	fs.BoolVar(&exitAtEnd, "exit-at-end", false, "same as -e")
	group := fs.String("group", "", "consumer group: resume from its committed offsets and commit what was printed")
	format := fs.String("format", "value", "output: value (the value, one per line) or json (one object per record with topic, partition, offset, timestamp, key, value, headers, header_list; a key or value that is not UTF-8 comes as key_base64 or value_base64; header_list is every header in order as {\"key\",\"value\"}, repeated keys included, while the object headers keeps the last value of a repeated key; a null header value is null in both, an empty one \"\"; the value format prints no headers)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one TOPIC, got %d arguments", len(pos))
	}
	if *format != "value" && *format != "json" {
		return usagef("--format must be value or json, got %q", *format)
	}
	if *n < 0 {
		return usagef("-n must not be negative")
	}
	start, err := parseStart(*from)
	if err != nil {
		return usagef("%v", err)
	}
	b, err := bf.open(ctx, c)
	if err != nil {
		return interrupted(ctx, err)
	}
	defer b.Close()
	// A reader that goes away (sluice consume | head) makes writes fail
	// with EPIPE instead of killing the process with SIGPIPE, so that the
	// offsets of what was printed are still committed.
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)
	w := bufio.NewWriterSize(c.stdout, 64<<10)
	// A group commits the offsets of the records fn accepted, so each is
	// flushed before fn returns: a record still in the buffer when a write
	// fails would be committed but never printed. -e without a group
	// batches its writes.
	flushEach := !exitAtEnd || *group != ""
	var line []byte
	err = b.Consume(ctx, pos[0], consumeOptions{from: start, group: *group, limit: *n, exitAtEnd: exitAtEnd}, func(m message) error {
		line = line[:0]
		if *format == "json" {
			line = appendMessageJSON(line, m)
		} else {
			line = append(line, m.value...)
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return outputError(err)
		}
		if flushEach {
			return outputError(w.Flush())
		}
		return nil
	})
	if ferr := w.Flush(); err == nil && ferr != nil {
		err = outputError(ferr)
	}
	if err == nil && ctx.Err() != nil {
		// Ctrl-C: what was printed is committed (with --group); exit
		// quietly with 130, as produce does.
		return errInterrupted
	}
	return err
}

// errOutputClosed is a write to standard output that failed because its
// reader went away (EPIPE); run exits quietly with 141, the status of a
// process killed by SIGPIPE, as cat and grep in a pipeline do.
var errOutputClosed = errors.New("standard output closed")

// outputError returns errOutputClosed for EPIPE and err, with context,
// otherwise (nil for nil).
func outputError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EPIPE):
		return errOutputClosed
	}
	return fmt.Errorf("write to standard output: %w", err)
}

func parseStart(s string) (startPosition, error) {
	switch s {
	case "earliest", "latest":
		return startPosition{kind: s}, nil
	}
	if off, err := strconv.ParseInt(s, 10, 64); err == nil {
		if off < 0 {
			return startPosition{}, fmt.Errorf("--from offset must not be negative, got %d", off)
		}
		return startPosition{kind: "offset", offset: off}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return startPosition{kind: "time", time: t.UnixMilli()}, nil
	}
	return startPosition{}, fmt.Errorf("--from must be earliest, latest, an offset or an RFC 3339 time (2026-01-02T15:04:05Z), got %q", s)
}

type jsonMessage struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Offset    int64   `json:"offset"`
	Timestamp int64   `json:"timestamp"`
	Key       *string `json:"key"`
	Value     *string `json:"value"`
	KeyB64    string  `json:"key_base64,omitempty"`   // the key, when it is not valid UTF-8 (key is then null)
	ValueB64  string  `json:"value_base64,omitempty"` // the value, when it is not valid UTF-8 (value is then null)
	// Headers maps each header key to its value: the last one of a key
	// that repeats. Kept as it was for scripts that read it; HeaderList
	// has every header.
	// A null value is null.
	Headers map[string]*string `json:"headers,omitempty"`
	// HeaderList is every header in the record's order, repeated keys
	// included, as Kafka keeps them.
	HeaderList []jsonHeader `json:"header_list,omitempty"`
}

// jsonHeader is one record header of consume --format json.
type jsonHeader struct {
	Key      string  `json:"key"`
	Value    *string `json:"value"`                  // null for a null value (and no value_base64)
	ValueB64 string  `json:"value_base64,omitempty"` // the value, when it is not valid UTF-8 (value is then null)
}

func appendMessageJSON(dst []byte, m message) []byte {
	jm := jsonMessage{Topic: m.topic, Partition: m.partition, Offset: m.offset, Timestamp: m.timestamp}
	// JSON strings hold text: bytes that are not UTF-8 would be replaced by
	// U+FFFD, so binary keys and values are given in base64 instead.
	if m.key != nil {
		if utf8.Valid(m.key) {
			k := string(m.key)
			jm.Key = &k
		} else {
			jm.KeyB64 = base64.StdEncoding.EncodeToString(m.key)
		}
	}
	if m.value != nil {
		if utf8.Valid(m.value) {
			v := string(m.value)
			jm.Value = &v
		} else {
			jm.ValueB64 = base64.StdEncoding.EncodeToString(m.value)
		}
	}
	if len(m.headers) > 0 {
		jm.Headers = map[string]*string{}
		jm.HeaderList = make([]jsonHeader, len(m.headers))
		for i, h := range m.headers {
			jh := jsonHeader{Key: h.key}
			if h.value != nil {
				v := string(h.value)
				jm.Headers[h.key] = &v
				if utf8.Valid(h.value) {
					jh.Value = &v
				} else {
					jh.ValueB64 = base64.StdEncoding.EncodeToString(h.value)
				}
			} else {
				jm.Headers[h.key] = nil
			}
			jm.HeaderList[i] = jh
		}
	}
	b, _ := json.Marshal(jm)
	return append(dst, b...)
}
