package logbench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/sluicehq/sluice/logstore"
)

func TestRunSmall(t *testing.T) {
	for _, mode := range []logstore.FsyncMode{logstore.FsyncAlways, logstore.FsyncNever} {
		res, err := Run(context.Background(), Config{
			Dir: t.TempDir(), RecordSize: 50, RecordsPerBatch: 10, Partitions: 2, Producers: 4,
			Fsync: logstore.FsyncPolicy{Mode: mode}, Records: 2000, Duration: time.Minute, Read: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Records < 2000 || res.ReadRecords != res.Records || res.RecordsPerSec <= 0 || res.AppendP99 < res.AppendP50 {
			t.Fatalf("implausible result %+v", res)
		}
		if mode == logstore.FsyncAlways && res.Syncs == 0 {
			t.Fatal("fsync always did no fsync")
		}
		t.Log(res.String())
	}
}

func TestMeasureDisk(t *testing.T) {
	res, err := MeasureDisk(context.Background(), DiskConfig{Dir: t.TempDir(), TotalBytes: 4 << 20, SyncWrites: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.SeqWriteMBPerSec <= 0 || res.FsyncP50 <= 0 || res.FsyncP99 < res.FsyncP50 {
		t.Fatalf("implausible disk result %+v", res)
	}
}

func TestMeasureSeqWriteOneSync(t *testing.T) {
	dir := t.TempDir()
	bw, err := MeasureSeqWrite(context.Background(), DiskConfig{Dir: dir, TotalBytes: 4 << 20, SyncEvery: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if bw <= 0 {
		t.Fatalf("bandwidth %v", bw)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("test files left behind: %v", left)
	}
}

func TestRunLeavesNoData(t *testing.T) {
	dir := t.TempDir()
	if _, err := Run(context.Background(), Config{Dir: dir, Records: 100, RecordsPerBatch: 10, Producers: 2, Duration: time.Minute}); err != nil {
		t.Fatal(err)
	}
	l, err := logstore.Open(logstore.Options{Dir: dir, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if topics := l.Topics(); len(topics) != 0 {
		t.Fatalf("benchmark left topics %v behind", topics)
	}
}
