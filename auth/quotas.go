package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/sluicehq/sluice/internal/kvtopic"
	"github.com/sluicehq/sluice/logstore"
)

// QuotasTopic is the internal topic holding the client quotas.
const QuotasTopic = "__sluice_quotas"

// Client quotas, as Kafka's: byte rates for producers and consumers set on
// an entity made of a user (principal name), a client id, or both, each
// either named or the default ("<default>": every user or client id that
// has no quota of its own).

// Default is the name of the default entity of a kind.
const Default = "<default>"

// The entity kinds and quota keys Kafka defines and Sluice enforces.
const (
	EntityUser     = "user"
	EntityClientID = "client-id"

	ProducerByteRate = "producer_byte_rate"
	ConsumerByteRate = "consumer_byte_rate"
)

// QuotaKeys are the quota keys accepted.
var QuotaKeys = []string{ProducerByteRate, ConsumerByteRate}

// QuotaEntity names what a quota applies to. An empty field is not part of
// the entity; Default is the default entity of that kind.
type QuotaEntity struct {
	User     string `json:"user,omitempty"`
	ClientID string `json:"client-id,omitempty"`
}

// Valid reports whether e names something.
func (e QuotaEntity) Valid() error {
	if e.User == "" && e.ClientID == "" {
		return fmt.Errorf("%w: an entity needs a user or a client id", ErrBadQuota)
	}
	return nil
}

// ErrBadQuota: an unknown key, a negative or not finite value, or an
// entity that names nothing (Kafka: INVALID_REQUEST).
var ErrBadQuota = errors.New("invalid quota")

// Quotas holds the client quotas, durable in the internal topic
// __sluice_quotas. It is safe for concurrent use.
type Quotas struct {
	kv *kvtopic.Topic

	mu     sync.RWMutex
	values map[QuotaEntity]map[string]float64
}

// OpenQuotas opens the quota store of l (creating its topic on first use).
func OpenQuotas(ctx context.Context, l *logstore.Log) (*Quotas, error) {
	kv, err := kvtopic.Open(l, QuotasTopic)
	if err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	q := &Quotas{kv: kv, values: map[QuotaEntity]map[string]float64{}}
	err = kv.Replay(ctx, func(k, v []byte) {
		var e QuotaEntity
		if json.Unmarshal(k, &e) != nil || e.Valid() != nil {
			return
		}
		if v == nil {
			delete(q.values, e)
			return
		}
		var m map[string]float64
		if json.Unmarshal(v, &m) == nil && len(m) > 0 {
			q.values[e] = m
		}
	})
	if err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	return q, nil
}

// Alter sets (value >= 0) and removes (remove) quota keys of entity,
// durably. With validateOnly it only checks.
func (q *Quotas) Alter(ctx context.Context, e QuotaEntity, set map[string]float64, remove []string, validateOnly bool) error {
	if err := e.Valid(); err != nil {
		return err
	}
	for k, v := range set {
		if !slices.Contains(QuotaKeys, k) {
			return fmt.Errorf("%w: unknown quota key %q (want %v)", ErrBadQuota, k, QuotaKeys)
		}
		if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: %s must be a positive number of bytes per second, got %v", ErrBadQuota, k, v)
		}
	}
	for _, k := range remove {
		if !slices.Contains(QuotaKeys, k) {
			return fmt.Errorf("%w: unknown quota key %q", ErrBadQuota, k)
		}
	}
	if validateOnly {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	next := map[string]float64{}
	for k, v := range q.values[e] {
		next[k] = v
	}
	for _, k := range remove {
		delete(next, k)
	}
	for k, v := range set {
		next[k] = v
	}
	key, _ := json.Marshal(e)
	var val []byte
	if len(next) > 0 {
		val, _ = json.Marshal(next)
	}
	if err := q.kv.Put(ctx, key, val); err != nil {
		return fmt.Errorf("quotas: %w", err)
	}
	if len(next) == 0 {
		delete(q.values, e)
	} else {
		q.values[e] = next
	}
	return nil
}

// QuotaEntry is one entity's quotas.
type QuotaEntry struct {
	Entity QuotaEntity
	Values map[string]float64
}

// List returns every entity with quotas that match reports true for,
// sorted by user then client id.
func (q *Quotas) List(match func(QuotaEntity) bool) []QuotaEntry {
	q.mu.RLock()
	defer q.mu.RUnlock()
	var out []QuotaEntry
	for e, v := range q.values {
		if match == nil || match(e) {
			out = append(out, QuotaEntry{Entity: e, Values: maps(v)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Entity.User != out[j].Entity.User {
			return out[i].Entity.User < out[j].Entity.User
		}
		return out[i].Entity.ClientID < out[j].Entity.ClientID
	})
	return out
}

func maps(m map[string]float64) map[string]float64 {
	c := make(map[string]float64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Resolve returns the quota of key that applies to a connection of user
// and clientID, with the entity it comes from, by Kafka's precedence:
// user+client, user+default client, user, default user+client, default
// user+default client, default user, client, default client. ok is false
// when none applies (no limit).
func (q *Quotas) Resolve(user, clientID, key string) (limit float64, from QuotaEntity, ok bool) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	for _, e := range []QuotaEntity{
		{User: user, ClientID: clientID}, {User: user, ClientID: Default}, {User: user},
		{User: Default, ClientID: clientID}, {User: Default, ClientID: Default}, {User: Default},
		{ClientID: clientID}, {ClientID: Default},
	} {
		if v, found := q.values[e][key]; found {
			return v, e, true
		}
	}
	return 0, QuotaEntity{}, false
}
