package kafka_test

import (
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
)

// eioFS fails writes to the segment files of the partitions whose
// directory name starts with prefix with EIO once failing is set.
type eioFS struct {
	logstore.FS
	prefix  string
	failing atomic.Bool
}

func (e *eioFS) OpenFile(name string, flag int, perm os.FileMode) (logstore.File, error) {
	f, err := e.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".log") || !strings.Contains(name, string(os.PathSeparator)+e.prefix) {
		return f, err
	}
	return &eioFile{File: f, fs: e}, nil
}

type eioFile struct {
	logstore.File
	fs *eioFS
}

func (f *eioFile) Write(b []byte) (int, error) {
	if f.fs.failing.Load() {
		return 0, &os.PathError{Op: "write", Path: "segment", Err: syscall.EIO}
	}
	return f.File.Write(b)
}

// A write to the log that fails with an I/O error answers the producer
// KAFKA_STORAGE_ERROR, as Kafka does for a failed log directory (its
// clients retry it), not UNKNOWN_SERVER_ERROR.
func TestLogIOErrorIsStorageError(t *testing.T) {
	fs := &eioFS{FS: logstore.OSFS{}, prefix: "broken"}
	cfg := kafka.DefaultConfig()
	cfg.AutoCreateTopics = false
	s := kafkatest.Start(t, kafkatest.Options{Config: &cfg, FS: fs})
	createTopic(t, s, "broken", 1)
	batch, err := record.AppendBatch(nil, []record.Record{{Value: []byte("v"), Timestamp: 1}}, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, s.Addr)
	if got := r.request(produceReq("broken", batch, 7)).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; got != 0 {
		t.Fatalf("produce before the fault: code %d", got)
	}
	fs.failing.Store(true)
	if got := r.request(produceReq("broken", batch, 7)).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; got != kerr.KafkaStorageError.Code {
		t.Fatalf("produce on EIO: code %d, want KAFKA_STORAGE_ERROR (%d)", got, kerr.KafkaStorageError.Code)
	}
}
