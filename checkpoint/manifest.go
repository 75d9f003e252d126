package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// FormatVersion is the version of the manifest and state file formats
// this build writes. It reads every version up to this one; a checkpoint
// written by a later version is refused with ErrVersion.
const FormatVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of manifests and state files.
var (
	// ErrCorrupt marks a manifest or state file whose bytes do not decode
	// or whose checksum or size does not match.
	ErrCorrupt = errors.New("corrupt checkpoint")
	// ErrVersion marks a checkpoint written by a newer format version.
	ErrVersion = errors.New("unsupported checkpoint format version")
	// ErrIncompatible marks a checkpoint of a different pipeline.
	ErrIncompatible = errors.New("checkpoint belongs to an incompatible pipeline")
	// ErrNoCheckpoint is returned when no complete checkpoint exists.
	ErrNoCheckpoint = errors.New("no complete checkpoint")
)

// Operator describes one operator of the pipeline in a manifest.
type Operator struct {
	// ID is the operator's stable identifier (its position in the graph
	// or a user-given uid); state is matched to operators by ID.
	ID string `json:"id"`
	// Name is the operator's display name.
	Name string `json:"name"`
	// Parallelism is the number of subtasks when the checkpoint was taken
	// (informative: a restore may use another parallelism).
	Parallelism int `json:"parallelism"`
}

// Pipeline is the shape of the job a checkpoint belongs to.
type Pipeline struct {
	Name string `json:"name,omitempty"`
	// MaxParallelism is the number of key groups; it cannot change for the
	// life of a job's state.
	MaxParallelism int        `json:"max_parallelism"`
	Operators      []Operator `json:"operators"`
}

// Compatible reports whether state written by pipeline p (the one in a
// checkpoint) can be restored into pipeline cur. The error wraps
// ErrIncompatible and names every difference: the maximum parallelism,
// operators missing on either side and operators whose name changed.
// Parallelism may differ (state is redistributed by key group).
func (p Pipeline) Compatible(cur Pipeline) error {
	var diffs []string
	if p.MaxParallelism != cur.MaxParallelism {
		diffs = append(diffs, fmt.Sprintf("max parallelism %d in the checkpoint, %d now", p.MaxParallelism, cur.MaxParallelism))
	}
	old := make(map[string]Operator, len(p.Operators))
	for _, o := range p.Operators {
		old[o.ID] = o
	}
	now := make(map[string]Operator, len(cur.Operators))
	for _, o := range cur.Operators {
		now[o.ID] = o
		if po, ok := old[o.ID]; !ok {
			diffs = append(diffs, fmt.Sprintf("operator %s (%s) is not in the checkpoint", o.ID, o.Name))
		} else if po.Name != o.Name {
			diffs = append(diffs, fmt.Sprintf("operator %s is %q in the checkpoint, %q now", o.ID, po.Name, o.Name))
		}
	}
	for _, o := range p.Operators {
		if _, ok := now[o.ID]; !ok {
			diffs = append(diffs, fmt.Sprintf("operator %s (%s) of the checkpoint is not in the pipeline", o.ID, o.Name))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrIncompatible, strings.Join(diffs, "; "))
}

// FileInfo names one file of a checkpoint, by its path relative to the
// storage root, with its size and CRC-32C (Castagnoli).
type FileInfo struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	CRC32C uint32 `json:"crc32c"`
}

// TaskState is what one task contributed to a checkpoint.
type TaskState struct {
	Task        TaskID           `json:"task"`
	Files       []string         `json:"files,omitempty"`
	Sources     []SourcePosition `json:"sources,omitempty"`
	Transaction Transaction      `json:"transaction,omitempty"`
}

// Manifest is the record of a complete checkpoint. It is written last;
// a checkpoint without a valid manifest does not exist.
type Manifest struct {
	Version   int         `json:"version"`
	ID        ID          `json:"id"`
	Savepoint bool        `json:"savepoint,omitempty"`
	CreatedMs int64       `json:"created_ms"`
	Pipeline  Pipeline    `json:"pipeline"`
	Tasks     []TaskState `json:"tasks"`
	// Files lists every file the checkpoint needs, its own and shared
	// ones, sorted by path.
	Files []FileInfo `json:"files"`
}

// Sources returns every source position recorded in the manifest.
func (m *Manifest) Sources() []SourcePosition {
	var out []SourcePosition
	for _, t := range m.Tasks {
		out = append(out, t.Sources...)
	}
	return out
}

// Transactions returns the pre-committed transactions of the subtasks of
// sink operator op, by subtask.
func (m *Manifest) Transactions(op string) map[int]Transaction {
	out := make(map[int]Transaction)
	for _, t := range m.Tasks {
		if t.Task.Operator == op && t.Transaction != nil {
			out[t.Task.Subtask] = t.Transaction
		}
	}
	return out
}

// TaskFiles returns the state files written by the subtasks of operator
// op, in subtask order.
func (m *Manifest) TaskFiles(op string) []string {
	var out []string
	for _, t := range m.Tasks {
		if t.Task.Operator == op {
			out = append(out, t.Files...)
		}
	}
	return out
}

// manifestMagic starts the header line of an encoded manifest.
const manifestMagic = "SLUICE-CHECKPOINT-MANIFEST"

// EncodeManifest encodes m: a header line with the format version, the
// length and the CRC-32C of the JSON body that follows.
func EncodeManifest(m *Manifest) ([]byte, error) {
	body, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, fmt.Errorf("manifest %d: %w", m.ID, err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s v%d len=%d crc32c=%08x\n", manifestMagic, m.Version, len(body), crc32.Checksum(body, castagnoli))
	b.Write(body)
	return b.Bytes(), nil
}

// DecodeManifest decodes and verifies an encoded manifest. It returns an
// error wrapping ErrCorrupt for damaged bytes and ErrVersion for a format
// newer than FormatVersion.
func DecodeManifest(data []byte) (*Manifest, error) {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 || nl > 200 {
		return nil, fmt.Errorf("%w: manifest has no header line", ErrCorrupt)
	}
	fields := strings.Fields(string(data[:nl]))
	if len(fields) != 4 || fields[0] != manifestMagic || !strings.HasPrefix(fields[1], "v") ||
		!strings.HasPrefix(fields[2], "len=") || !strings.HasPrefix(fields[3], "crc32c=") {
		return nil, fmt.Errorf("%w: bad manifest header %q", ErrCorrupt, data[:nl])
	}
	version, err1 := strconv.Atoi(fields[1][1:])
	length, err2 := strconv.Atoi(fields[2][4:])
	sum, err3 := strconv.ParseUint(fields[3][7:], 16, 32)
	if err1 != nil || err2 != nil || err3 != nil || version < 1 || length < 0 {
		return nil, fmt.Errorf("%w: bad manifest header %q", ErrCorrupt, data[:nl])
	}
	if version > FormatVersion {
		return nil, fmt.Errorf("%w: manifest version %d, this build reads up to %d", ErrVersion, version, FormatVersion)
	}
	body := data[nl+1:]
	if len(body) != length {
		return nil, fmt.Errorf("%w: manifest body is %d bytes, header says %d (truncated?)", ErrCorrupt, len(body), length)
	}
	if got := crc32.Checksum(body, castagnoli); got != uint32(sum) {
		return nil, fmt.Errorf("%w: manifest checksum %08x, header says %08x", ErrCorrupt, got, sum)
	}
	m := new(Manifest)
	if err := json.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%w: manifest body: %v", ErrCorrupt, err)
	}
	if m.Version != version {
		return nil, fmt.Errorf("%w: manifest body version %d, header %d", ErrCorrupt, m.Version, version)
	}
	return m, nil
}

// manifestAt decodes the manifest of the checkpoint at loc from data, the
// result of reading it (readErr; missing: the manifest does not exist,
// so the checkpoint was never completed), with errors naming loc.
func manifestAt(loc string, data []byte, readErr error, missing bool) (*Manifest, error) {
	if readErr != nil {
		if missing {
			return nil, fmt.Errorf("checkpoint %s: %w: no manifest (incomplete)", loc, ErrCorrupt)
		}
		return nil, fmt.Errorf("checkpoint %s: %w", loc, readErr)
	}
	m, err := DecodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", loc, err)
	}
	return m, nil
}
