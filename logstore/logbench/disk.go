package logbench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"
)

// DiskConfig describes a measurement of the disk's own limits.
type DiskConfig struct {
	Dir        string // where the test file goes (the data directory's file system); "" = os.TempDir()
	BlockSize  int    // bytes per write in the bandwidth test (default 1 MiB)
	TotalBytes int64  // bytes written by the bandwidth test at most (default 1 GiB)
	// SyncEvery is the bytes written between two fdatasyncs in the
	// bandwidth test (default BlockSize: one after every block). Set it to
	// TotalBytes for `dd bs=1M count=1024 conv=fdatasync`: every block
	// written, one fdatasync at the end, timed with it. Either way the
	// test ends with an fdatasync and its time counts.
	SyncEvery  int64
	SyncWrites int           // number of small write+fdatasync pairs timed for latency (default 200)
	SyncSize   int           // bytes per small write (default 4 KiB)
	MaxTime    time.Duration // bound on each test (default 5s)
}

// DiskResult is what the disk can do on its own.
type DiskResult struct {
	SeqWriteMBPerSec float64       // sequential appends of BlockSize, fdatasync every SyncEvery bytes
	FsyncP50         time.Duration // latency of a small append + fdatasync
	FsyncP99         time.Duration
}

func (d DiskResult) String() string {
	return fmt.Sprintf("disk: sequential write with fdatasync %.1f MB/s; small write+fdatasync p50 %v p99 %v\n",
		d.SeqWriteMBPerSec, d.FsyncP50.Round(time.Microsecond), d.FsyncP99.Round(time.Microsecond))
}

// MeasureDisk measures sequential write bandwidth with an fdatasync after
// every block (the best an fsync-per-commit log can do on this disk; see
// SyncEvery for other spacings) and the latency of a small write followed
// by fdatasync (the floor of a group commit's latency). It writes to an
// appended file, like the log.
func MeasureDisk(ctx context.Context, cfg DiskConfig) (DiskResult, error) {
	cfg.defaults()
	var res DiskResult
	bw, err := MeasureSeqWrite(ctx, cfg)
	if err != nil {
		return res, err
	}
	res.SeqWriteMBPerSec = bw
	g, err := os.CreateTemp(cfg.Dir, "sluice-disk-bench-*.sync")
	if err != nil {
		return res, err
	}
	defer os.Remove(g.Name())
	defer g.Close()
	small := make([]byte, cfg.SyncSize)
	lat := make([]time.Duration, 0, cfg.SyncWrites)
	start := time.Now()
	for i := 0; i < cfg.SyncWrites && time.Since(start) < cfg.MaxTime; i++ {
		t0 := time.Now()
		if _, err := g.Write(small); err != nil {
			return res, err
		}
		if err := fdatasync(g); err != nil {
			return res, err
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	res.FsyncP50, res.FsyncP99 = percentile(lat, 0.5), percentile(lat, 0.99)
	return res, nil
}

func (cfg *DiskConfig) defaults() {
	if cfg.Dir == "" {
		cfg.Dir = os.TempDir()
	}
	if cfg.BlockSize <= 0 {
		cfg.BlockSize = 1 << 20
	}
	if cfg.TotalBytes <= 0 {
		cfg.TotalBytes = 1 << 30
	}
	if cfg.SyncEvery <= 0 {
		cfg.SyncEvery = int64(cfg.BlockSize)
	}
	if cfg.SyncWrites <= 0 {
		cfg.SyncWrites = 200
	}
	if cfg.SyncSize <= 0 {
		cfg.SyncSize = 4096
	}
	if cfg.MaxTime <= 0 {
		cfg.MaxTime = 5 * time.Second
	}
}

// MeasureSeqWrite is MeasureDisk's bandwidth test alone: blocks of
// BlockSize appended to a new file, an fdatasync every SyncEvery bytes and
// at the end, until TotalBytes or MaxTime; it returns MB/s (10^6 bytes)
// over the whole time, final fdatasync included.
func MeasureSeqWrite(ctx context.Context, cfg DiskConfig) (float64, error) {
	cfg.defaults()
	f, err := os.CreateTemp(cfg.Dir, "sluice-disk-bench-")
	if err != nil {
		return 0, err
	}
	name := f.Name()
	defer os.Remove(name)
	defer f.Close()
	block := make([]byte, cfg.BlockSize)
	for i := range block {
		block[i] = byte(i * 7)
	}
	var written, unsynced int64
	start := time.Now()
	for written < cfg.TotalBytes && time.Since(start) < cfg.MaxTime {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := f.Write(block)
		if err != nil {
			return 0, fmt.Errorf("disk benchmark write %s: %w", name, err)
		}
		written += int64(n)
		unsynced += int64(n)
		if unsynced >= cfg.SyncEvery {
			if err := fdatasync(f); err != nil {
				return 0, fmt.Errorf("disk benchmark fdatasync %s: %w", name, err)
			}
			unsynced = 0
		}
	}
	if unsynced > 0 {
		if err := fdatasync(f); err != nil {
			return 0, fmt.Errorf("disk benchmark fdatasync %s: %w", name, err)
		}
	}
	return float64(written) / 1e6 / time.Since(start).Seconds(), nil
}

func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
