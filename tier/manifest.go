package tier

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"sort"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/logstore"
)

// The manifest of a partition's remote segments.
//
// Object layout under the store's prefix, for topic T with remote id R
// (logstore.TopicConfig.RemoteID), partition P:
//
//	T-R/P/manifest-<version, 20 digits>      the manifest, one object per version
//	T-R/P/<base, 20 digits>-<upload id>.log        the segment's batches as stored locally
//	T-R/P/<base, 20 digits>-<upload id>.index      its offset index (logstore format)
//	T-R/P/<base, 20 digits>-<upload id>.timeindex  its time index
//	T-R/P/<base, 20 digits>-<upload id>.snapshot   its producer-state snapshot, when the log had one
//
// A manifest object is a header line and a JSON body:
//
//	sluice-tier-manifest 1 <CRC-32C of the body, 8 hex digits>\n{...}
//
// The highest version whose header and CRC are good wins; an older one is
// kept as a fallback and the rest are deleted. Versions only grow. A
// damaged version is never overwritten, nor deleted unless a good version
// says it was made from it (based_on; see Tier.load).

const (
	manifestPrefix = "manifest-"
	manifestMagic  = "sluice-tier-manifest"
	manifestFormat = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// manifest is one version of a partition's remote state. It is immutable
// once published.
type manifest struct {
	Version   int64  `json:"version"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// RemoteEnd is the end offset of the newest segment ever uploaded:
	// every local segment ending at or below it is (or was, before remote
	// retention) safely remote.
	RemoteEnd int64           `json:"remote_end"`
	Segments  []remoteSegment `json:"segments"` // by base offset, contiguous
	// Based is the version whose content this one was made from (the
	// manifest in use when it was published); 0 when unknown (the first
	// version, or one written before the field). A damaged version that a
	// good one was made from is superseded: every segment it names is in
	// that good version or was removed on purpose (Tier.load).
	Based int64 `json:"based_on,omitempty"`

	// origin is the version whose content the manifest in memory holds:
	// its own, except after a fallback past damaged versions, when its
	// Version stands above them and origin is the good version read.
	origin int64
}

// remoteSegment is one uploaded segment.
type remoteSegment struct {
	Base         int64  `json:"base"`
	End          int64  `json:"end"`
	Size         int64  `json:"size"`
	MaxTimestamp int64  `json:"max_timestamp"`
	UploadID     string `json:"upload_id"`
	// CRC-32C of each object: the log (whole), the indexes, the snapshot.
	LogCRC       uint32 `json:"log_crc"`
	IndexCRC     uint32 `json:"index_crc"`
	IndexSize    int64  `json:"index_size"`
	TimeIndexCRC uint32 `json:"time_index_crc"`
	TimeIndexSz  int64  `json:"time_index_size"`
	HasSnapshot  bool   `json:"has_snapshot,omitempty"`
	SnapshotCRC  uint32 `json:"snapshot_crc,omitempty"`
	// ChunkBytes and ChunkCRCs let a reader check each ranged GET of the
	// log: the CRC-32C of bytes [i*ChunkBytes, (i+1)*ChunkBytes).
	ChunkBytes int64    `json:"chunk_bytes"`
	ChunkCRCs  []uint32 `json:"chunk_crcs"`
	// Aborted lists the transactions that overlap the segment and were
	// aborted when it was uploaded (for read_committed fetches of the
	// remote range); one aborted later is in the later segments' lists.
	Aborted []logstore.AbortedTxn `json:"aborted,omitempty"`
}

func (s *remoteSegment) stem(dir string) string {
	return fmt.Sprintf("%s/%020d-%s", dir, s.Base, s.UploadID)
}

func (s *remoteSegment) logKey(dir string) string   { return s.stem(dir) + ".log" }
func (s *remoteSegment) indexKey(dir string) string { return s.stem(dir) + ".index" }
func (s *remoteSegment) timeKey(dir string) string  { return s.stem(dir) + ".timeindex" }
func (s *remoteSegment) snapKey(dir string) string  { return s.stem(dir) + ".snapshot" }

// keys lists the objects of the segment.
func (s *remoteSegment) keys(dir string) []string {
	k := []string{s.logKey(dir), s.indexKey(dir), s.timeKey(dir)}
	if s.HasSnapshot {
		k = append(k, s.snapKey(dir))
	}
	return k
}

// start is the first offset the manifest holds, and false when it holds
// none.
func (m *manifest) start() (int64, bool) {
	if m == nil || len(m.Segments) == 0 {
		return 0, false
	}
	return m.Segments[0].Base, true
}

// bytes is the size of every remote segment.
func (m *manifest) bytes() int64 {
	var n int64
	for _, s := range m.Segments {
		n += s.Size
	}
	return n
}

// find returns the segment holding offset, or nil.
func (m *manifest) find(offset int64) *remoteSegment {
	if m == nil {
		return nil
	}
	i := sort.Search(len(m.Segments), func(i int) bool { return m.Segments[i].End > offset })
	if i == len(m.Segments) || m.Segments[i].Base > offset {
		return nil
	}
	return &m.Segments[i]
}

func manifestKey(dir string, version int64) string {
	return fmt.Sprintf("%s/%s%020d", dir, manifestPrefix, version)
}

// parseManifestVersion returns the version of a manifest object's key.
func parseManifestVersion(key string) (int64, bool) {
	i := strings.LastIndex(key, "/"+manifestPrefix)
	if i < 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(key[i+1+len(manifestPrefix):], 10, 64)
	return v, err == nil && v >= 0
}

func encodeManifest(m *manifest) ([]byte, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := fmt.Appendf(nil, "%s %d %08x\n", manifestMagic, manifestFormat, crc(body))
	return append(out, body...), nil
}

// decodeManifest parses a manifest object, checking its header and CRC and
// that its segments are ordered and contiguous.
func decodeManifest(b []byte) (*manifest, error) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return nil, fmt.Errorf("manifest: no header line")
	}
	var format int
	var sum uint32
	if _, err := fmt.Sscanf(string(b[:nl]), manifestMagic+" %d %x", &format, &sum); err != nil {
		return nil, fmt.Errorf("manifest: bad header %q", b[:min(nl, 60)])
	}
	if format != manifestFormat {
		return nil, fmt.Errorf("manifest: format %d, this sluice reads %d", format, manifestFormat)
	}
	body := b[nl+1:]
	if got := crc(body); got != sum {
		return nil, fmt.Errorf("manifest: CRC-32C %08x, header says %08x (torn or corrupt)", got, sum)
	}
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	for i, s := range m.Segments {
		if s.End <= s.Base || s.Size < 0 || s.ChunkBytes <= 0 || int64(len(s.ChunkCRCs)) != (s.Size+s.ChunkBytes-1)/s.ChunkBytes {
			return nil, fmt.Errorf("manifest: segment %d (base %d) is malformed", i, s.Base)
		}
		if i > 0 && s.Base < m.Segments[i-1].End {
			return nil, fmt.Errorf("manifest: segment %d (base %d) overlaps the previous one", i, s.Base)
		}
		if s.End > m.RemoteEnd {
			return nil, fmt.Errorf("manifest: segment %d ends at %d, after remote_end %d", i, s.End, m.RemoteEnd)
		}
	}
	return &m, nil
}
