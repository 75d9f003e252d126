package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/valyala/fastjson"
)

// maxLineBytes bounds one stdin record.
const maxLineBytes = 16 << 20

func produceCommand() *command {
	return &command{name: "produce", summary: "append newline-delimited records from stdin to a topic", run: produceRun}
}

func produceRun(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice produce", "TOPIC [--key-field FIELD] [--partition N] < records")
	var bf backendFlags
	bf.register(c, fs)
	keyField := fs.String("key-field", "", "input lines are JSON objects; use this field's value as the record key (records with a key go to the partition Kafka's default partitioner picks; a string gives its text, other values their JSON, and null a null key, partitioned as a record without a key)")
	var partition optionalInt
	fs.Var(&partition, "partition", "write every record to this `PARTITION` (default: by key; records without a key go a batch at a time to one partition, then the next, so a small input may land in one partition)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one TOPIC, got %d arguments", len(pos))
	}
	p := int64(-1) // by key
	if partition.set {
		if partition.v < -1 || partition.v > 1<<31-1 {
			return usagef("--partition must be a partition number (0 or more), got %d", partition.v)
		}
		p = partition.v
	}
	b, err := bf.open(ctx, c)
	if err != nil {
		return interrupted(ctx, err)
	}
	defer b.Close()

	recs := make(chan produceRecord, 4096)
	readErr := make(chan error, 1)
	rctx, cancelRead := context.WithCancel(ctx)
	defer cancelRead()
	go func() {
		defer close(recs)
		readErr <- readRecords(rctx, c.stdin, *keyField, recs)
	}()
	sum, err := b.Produce(ctx, pos[0], int32(p), recs)
	// Produce returns early on an error or when ctx ends (Ctrl-C); the
	// reader may then be blocked reading stdin (a terminal, an endless
	// pipe), so it is stopped but not waited for. Without an error,
	// Produce read recs to the end: the reader has finished.
	cancelRead()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		// Ctrl-C: the records Produce had taken were still written; say
		// how many were acknowledged and exit quietly with 130.
		printProduceSummary(c.stdout, pos[0], sum)
		return errInterrupted
	}
	if err != nil {
		// What was acknowledged before the error, if anything.
		if sum.records > 0 {
			printProduceSummary(c.stdout, pos[0], sum)
		}
		return err
	}
	rerr := <-readErr
	if rerr == nil || sum.records > 0 {
		printProduceSummary(c.stdout, pos[0], sum)
	}
	return rerr
}

// nextRecord receives the next record of recs; false once recs is closed or
// ctx ends, so that a Produce never waits on a stdin that does not end.
func nextRecord(ctx context.Context, recs <-chan produceRecord) (produceRecord, bool) {
	select {
	case r, ok := <-recs:
		return r, ok
	case <-ctx.Done():
		return produceRecord{}, false
	}
}

// readRecords sends one record per stdin line (without the newline); empty
// lines are skipped.
func readRecords(ctx context.Context, r io.Reader, keyField string, out chan<- produceRecord) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var p fastjson.Parser
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A long line: accumulate it.
			full := append([]byte(nil), b...)
			for err == bufio.ErrBufferFull && len(full) <= maxLineBytes {
				b, err = br.ReadSlice('\n')
				full = append(full, b...)
			}
			if len(full) > maxLineBytes {
				return fmt.Errorf("stdin line %d: longer than %d bytes", line, maxLineBytes)
			}
			b = full
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read stdin: %w", err)
		}
		v := bytes.TrimRight(b, "\r\n")
		if len(v) > 0 {
			rec := produceRecord{value: bytes.Clone(v)}
			if keyField != "" {
				doc, perr := p.ParseBytes(v)
				if perr != nil {
					return fmt.Errorf("stdin line %d: --key-field needs JSON objects: %v", line, perr)
				}
				kv := doc.Get(keyField)
				if kv == nil {
					return fmt.Errorf("stdin line %d: no field %q", line, keyField)
				}
				switch kv.Type() {
				case fastjson.TypeNull:
					// Kafka's null key, not the string "null": partitioned
					// as a record without a key.
				case fastjson.TypeString:
					rec.key = bytes.Clone(kv.GetStringBytes())
				default:
					rec.key = kv.MarshalTo(nil)
				}
			}
			select {
			case out <- rec:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

func printProduceSummary(w io.Writer, topic string, s produceSummary) {
	fmt.Fprintf(w, "acknowledged %d records to %s", s.records, topic)
	parts := make([]int32, 0, len(s.first))
	for p := range s.first {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for i, p := range parts {
		sep := ": "
		if i > 0 {
			sep = ", "
		}
		fmt.Fprintf(w, "%spartition %d offsets %s-%s", sep, p, strconv.FormatInt(s.first[p], 10), strconv.FormatInt(s.last[p], 10))
	}
	fmt.Fprintln(w)
}
