package kafka_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// holdFS holds the first fdatasync of a segment file after arm() until
// release is closed.
type holdFS struct {
	logstore.FS
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (h *holdFS) arm() {
	h.mu.Lock()
	h.armed = true
	h.entered = make(chan struct{})
	h.release = make(chan struct{})
	h.mu.Unlock()
}

func (h *holdFS) OpenFile(name string, flag int, perm os.FileMode) (logstore.File, error) {
	f, err := h.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &holdFile{File: f, h: h}, nil
}

type holdFile struct {
	logstore.File
	h *holdFS
}

func (f *holdFile) Sync() error {
	f.h.mu.Lock()
	armed := f.h.armed
	f.h.armed = false
	entered, release := f.h.entered, f.h.release
	f.h.mu.Unlock()
	if armed {
		close(entered)
		<-release
	}
	return f.File.Sync()
}

// TestProduceAnsweredOnlyAfterFsync: with fsync always, a produce request
// is answered only after an fdatasync covering its batch has returned,
// although the listener writes the batches of the requests it reads
// meanwhile into the segment at once (write-ahead). The first request's
// fdatasync is held; two more requests pipelined behind it reach the
// segment file, and no answer leaves the server until it is released.
func TestProduceAnsweredOnlyAfterFsync(t *testing.T) {
	h := &holdFS{FS: logstore.OSFS{}}
	s := kafkatest.Start(t, kafkatest.Options{FS: h})
	createTopic(t, s, "held", 1)
	r := dialRaw(t, s.Addr)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("held"))
	batch, err := record.AppendBatch(nil, []record.Record{{Value: []byte("v"), Timestamp: 1}, {Value: []byte("w"), Timestamp: 2}}, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(s.Dir, "topics", "held", "0", "00000000000000000000.log")

	h.arm()
	r.send(f.AppendRequest(nil, produceReq("held", batch, 7), 1))
	<-h.entered // the first request's commit is in its fdatasync
	r.send(f.AppendRequest(nil, produceReq("held", batch, 7), 2))
	r.send(f.AppendRequest(nil, produceReq("held", batch, 7), 3))
	// Both later batches reach the file while the fdatasync is held.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := os.Stat(seg)
		if err == nil && st.Size() == int64(3*len(batch)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pipelined batches were not written ahead during the held fdatasync (segment: %v, %v)", st, err)
		}
		time.Sleep(time.Millisecond)
	}
	// Nothing may have been answered: check what has arrived, without waiting.
	if err := r.c.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	if n, err := r.c.Read(one[:]); n > 0 {
		t.Fatalf("an answer arrived before the fdatasync returned (%v)", err)
	}
	if err := r.c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	close(h.release)
	for i, want := range []int64{0, 2, 4} {
		body, err := r.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(7)
		if corr := int32(body[0])<<24 | int32(body[1])<<16 | int32(body[2])<<8 | int32(body[3]); corr != int32(i+1) {
			t.Fatalf("answer %d has correlation id %d", i+1, corr)
		}
		if err := resp.ReadFrom(body[4:]); err != nil {
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.BaseOffset != want {
			t.Fatalf("answer %d: %v, base offset %d, want %d", i+1, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, want)
		}
	}
}
