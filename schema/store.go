package schema

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The registry's state lives in the compacted topic _schemas as one record
// per key, the latest value winning (the same shape as Confluent's
// registry, though not its byte format):
//
//	"s\x00<subject>\x00<version>"  a subject version: subject, version, id,
//	                               schema type, text, references, deleted
//	                               flag; a tombstone once hard deleted
//	"c\x00<subject>"               a subject's config ("c\x00" the global)
//	"m\x00<subject>"               a subject's mode ("m\x00" the global)
//	"i"                            the highest id ever given
//
// Each version record carries its schema's text, so a schema lives as long
// as one version uses it, and the id record keeps ids monotonic after the
// versions of the highest id are hard deleted and compacted away. The
// state is a function of the latest value of every key, so a compacted
// topic replays to the same state as the full history.

const (
	prefixVersion = "s\x00"
	prefixConfig  = "c\x00"
	prefixMode    = "m\x00"
	keyMaxID      = "i"
)

type versionRecord struct {
	Subject    string      `json:"subject"`
	Version    int         `json:"version"`
	ID         int         `json:"id"`
	Type       Type        `json:"schemaType"`
	Schema     string      `json:"schema"`
	References []Reference `json:"references,omitempty"`
	Deleted    bool        `json:"deleted,omitempty"`
}

type maxIDRecord struct {
	MaxID int `json:"maxId"`
}

type modeRecord struct {
	Mode Mode `json:"mode"`
}

func versionKey(subject string, version int) []byte {
	return []byte(prefixVersion + subject + "\x00" + strconv.Itoa(version))
}

func configKey(subject string) []byte { return []byte(prefixConfig + subject) }
func modeKey(subject string) []byte   { return []byte(prefixMode + subject) }

// versionEntry is one version of a subject.
type versionEntry struct {
	version int
	id      int
	deleted bool
}

// schemaEntry is a schema by id: its content, its identity key (set once
// compiled) and how many subject versions use it.
type schemaEntry struct {
	Schema
	key   string
	users int
}

// state is the registry's memory, rebuilt from _schemas at open and
// changed only by apply.
type state struct {
	subjects map[string][]*versionEntry // by version, ascending
	schemas  map[int]*schemaEntry
	byKey    map[string]int
	config   map[string]Config // "" is the global config
	mode     map[string]Mode   // "" is the global mode
	maxID    int
}

func newState() *state {
	return &state{
		subjects: map[string][]*versionEntry{},
		schemas:  map[int]*schemaEntry{},
		byKey:    map[string]int{},
		config:   map[string]Config{},
		mode:     map[string]Mode{},
	}
}

// apply applies one record of _schemas (a nil value deletes its key).
func (s *state) apply(key, value []byte) error {
	k := string(key)
	switch {
	case strings.HasPrefix(k, prefixVersion):
		subject, v, ok := strings.Cut(k[len(prefixVersion):], "\x00")
		version, err := strconv.Atoi(v)
		if !ok || err != nil {
			return fmt.Errorf("bad version key %q", k)
		}
		if value == nil {
			s.removeVersion(subject, version)
			return nil
		}
		var rec versionRecord
		if err := json.Unmarshal(value, &rec); err != nil {
			return fmt.Errorf("version record %q: %w", k, err)
		}
		if rec.Subject != subject || rec.Version != version || rec.ID <= 0 {
			return fmt.Errorf("version record %q does not match its key", k)
		}
		s.setVersion(rec)
	case strings.HasPrefix(k, prefixConfig):
		subject := k[len(prefixConfig):]
		if value == nil {
			delete(s.config, subject)
			return nil
		}
		var c Config
		if err := json.Unmarshal(value, &c); err != nil {
			return fmt.Errorf("config record %q: %w", k, err)
		}
		if _, err := ParseLevel(string(c.Compatibility)); err != nil {
			return fmt.Errorf("config record %q: %w", k, err)
		}
		s.config[subject] = c
	case strings.HasPrefix(k, prefixMode):
		subject := k[len(prefixMode):]
		if value == nil {
			delete(s.mode, subject)
			return nil
		}
		var m modeRecord
		if err := json.Unmarshal(value, &m); err != nil {
			return fmt.Errorf("mode record %q: %w", k, err)
		}
		if _, err := ParseMode(string(m.Mode)); err != nil {
			return fmt.Errorf("mode record %q: %w", k, err)
		}
		s.mode[subject] = m.Mode
	case k == keyMaxID:
		if value == nil {
			return nil
		}
		var m maxIDRecord
		if err := json.Unmarshal(value, &m); err != nil {
			return fmt.Errorf("id record: %w", err)
		}
		s.maxID = max(s.maxID, m.MaxID)
	default:
		return fmt.Errorf("unknown key %q", k)
	}
	return nil
}

func (s *state) findVersion(subject string, version int) (int, bool) {
	return slices.BinarySearchFunc(s.subjects[subject], version, func(e *versionEntry, v int) int { return e.version - v })
}

func (s *state) setVersion(rec versionRecord) {
	s.maxID = max(s.maxID, rec.ID)
	vs := s.subjects[rec.Subject]
	i, found := s.findVersion(rec.Subject, rec.Version)
	if found {
		e := vs[i]
		if e.id != rec.ID {
			s.release(e.id)
			s.use(rec)
		}
		e.id, e.deleted = rec.ID, rec.Deleted
		return
	}
	s.use(rec)
	s.subjects[rec.Subject] = slices.Insert(vs, i, &versionEntry{version: rec.Version, id: rec.ID, deleted: rec.Deleted})
}

func (s *state) removeVersion(subject string, version int) {
	i, found := s.findVersion(subject, version)
	if !found {
		return
	}
	s.release(s.subjects[subject][i].id)
	s.subjects[subject] = slices.Delete(s.subjects[subject], i, i+1)
	if len(s.subjects[subject]) == 0 {
		delete(s.subjects, subject)
	}
}

// use counts a version's use of its schema, creating the schema entry.
func (s *state) use(rec versionRecord) {
	e := s.schemas[rec.ID]
	if e == nil {
		t := rec.Type
		if t == "" {
			t = Avro
		}
		e = &schemaEntry{Schema: Schema{Type: t, Text: rec.Schema, References: rec.References}}
		s.schemas[rec.ID] = e
	}
	e.users++
}

// release drops a version's use of schema id; a schema no version uses is
// gone.
func (s *state) release(id int) {
	e := s.schemas[id]
	if e == nil {
		return
	}
	if e.users--; e.users <= 0 {
		if e.key != "" && s.byKey[e.key] == id {
			delete(s.byKey, e.key)
		}
		delete(s.schemas, id)
	}
}

// live returns a subject's versions that are not soft deleted (all of them
// with deleted).
func (s *state) live(subject string, deleted bool) []*versionEntry {
	var out []*versionEntry
	for _, e := range s.subjects[subject] {
		if deleted || !e.deleted {
			out = append(out, e)
		}
	}
	return out
}
