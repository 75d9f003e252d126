package logstore

import (
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// TopicID is a topic's id (Kafka's topic id, KIP-516): a random UUID given
// when the topic is created and kept in its topic.json, so that it is the
// same after every restart and a topic deleted and created again under
// its name has a new one (clients tell them apart by it).
type TopicID [16]byte

// newTopicID returns a random (version 4) UUID that is neither the zero
// id nor Kafka's reserved metadata topic id (…0001), and whose base64 form
// does not start with '-', as Kafka's Uuid.randomUuid (such an id would
// read as an option on command lines).
func newTopicID() TopicID {
	for {
		var id TopicID
		crand.Read(id[:])
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
		if base64.RawURLEncoding.EncodeToString(id[:])[0] != '-' {
			return id
		}
	}
}

// LegacyTopicID is the id earlier versions derived from the topic's name
// (and so gave again to a topic created again under it). A topic whose
// topic.json has no id, written by such a version, keeps this one: Open
// writes it into topic.json, so clients see the same id as before.
func LegacyTopicID(name string) TopicID {
	sum := sha256.Sum256([]byte("sluice-topic:" + name))
	var id TopicID
	copy(id[:], sum[:16])
	return id
}

// IsZero reports whether id is the zero id (no id).
func (id TopicID) IsZero() bool { return id == TopicID{} }

// String formats id as a UUID (8-4-4-4-12 hex digits).
func (id TopicID) String() string {
	h := hex.EncodeToString(id[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// MarshalText implements encoding.TextMarshaler (topic.json): the UUID, or
// "" for the zero id.
func (id TopicID) MarshalText() ([]byte, error) {
	if id.IsZero() {
		return []byte{}, nil
	}
	return []byte(id.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler: a UUID, with or
// without its dashes; "" is the zero id.
func (id *TopicID) UnmarshalText(b []byte) error {
	s := strings.ReplaceAll(string(b), "-", "")
	if s == "" {
		*id = TopicID{}
		return nil
	}
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != len(id) {
		return fmt.Errorf("topic id %q: want a UUID (32 hex digits)", b)
	}
	copy(id[:], raw)
	return nil
}
