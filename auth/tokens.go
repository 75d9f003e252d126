package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/kvtopic"
	"github.com/sluicehq/sluice/logstore"
)

// TokensTopic is the internal topic holding the HTTP bearer tokens.
const TokensTopic = "__sluice_tokens"

// HTTP bearer tokens tied to principals. A token is 32 random bytes shown
// once when created; the store keeps only its SHA-256 (a token is random
// and long, so a fast hash does not help guessing), the principal it acts
// as, and a short id to list and revoke it by. The HTTP server maps a
// presented token to its principal, which the same ACLs as on the Kafka
// listener then authorise.

// TokenInfo describes a token without its secret.
type TokenInfo struct {
	ID        string    `json:"id"`
	Principal string    `json:"principal"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires,omitzero"` // zero: never
}

// ErrToken: an unknown token id, or a bad principal or lifetime.
var ErrToken = errors.New("token error")

// Tokens holds the HTTP tokens, durable in __sluice_tokens.
// It is safe for concurrent use (the HTTP server checks tokens while its
// admin API creates and revokes them).
type Tokens struct {
	kv *kvtopic.Topic

	wmu sync.Mutex // serializes Revoke's lookup and write

	mu     sync.RWMutex
	byHash map[string]TokenInfo // hex SHA-256 of the token -> info
}

// OpenTokens opens the token store of l.
func OpenTokens(ctx context.Context, l *logstore.Log) (*Tokens, error) {
	kv, err := kvtopic.Open(l, TokensTopic)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	t := &Tokens{kv: kv, byHash: map[string]TokenInfo{}}
	err = kv.Replay(ctx, func(k, v []byte) {
		if v == nil {
			delete(t.byHash, string(k))
			return
		}
		var info TokenInfo
		if json.Unmarshal(v, &info) == nil {
			t.byHash[string(k)] = info
		}
	})
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return t, nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Create makes a token acting as principal (User:NAME), valid for ttl (0:
// until revoked), and returns it with its info. The token itself is not
// kept: show it to the user now.
func (t *Tokens) Create(ctx context.Context, principal string, ttl time.Duration) (string, TokenInfo, error) {
	if !strings.HasPrefix(principal, "User:") || len(principal) == len("User:") {
		return "", TokenInfo{}, fmt.Errorf("%w: principal %q must be User:NAME", ErrToken, principal)
	}
	if ttl < 0 {
		return "", TokenInfo{}, fmt.Errorf("%w: negative lifetime", ErrToken)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", TokenInfo{}, err
	}
	token := "sluice_" + base64.RawURLEncoding.EncodeToString(raw)
	h := hashToken(token)
	info := TokenInfo{ID: h[:12], Principal: principal, Created: time.Now().UTC().Truncate(time.Second)}
	if ttl > 0 {
		info.Expires = info.Created.Add(ttl)
	}
	v, _ := json.Marshal(info)
	if err := t.kv.Put(ctx, []byte(h), v); err != nil {
		return "", TokenInfo{}, err
	}
	t.mu.Lock()
	t.byHash[h] = info
	t.mu.Unlock()
	return token, info, nil
}

// Principal returns the principal a token acts as, if it is known and not
// expired at now.
func (t *Tokens) Principal(token string, now time.Time) (string, bool) {
	t.mu.RLock()
	info, ok := t.byHash[hashToken(token)]
	t.mu.RUnlock()
	if !ok || (!info.Expires.IsZero() && !now.Before(info.Expires)) {
		return "", false
	}
	return info.Principal, true
}

// Expired reports whether token is a known token whose lifetime ended
// before now (for telling it from an unknown one in logs and metrics).
func (t *Tokens) Expired(token string, now time.Time) bool {
	t.mu.RLock()
	info, ok := t.byHash[hashToken(token)]
	t.mu.RUnlock()
	return ok && !info.Expires.IsZero() && !now.Before(info.Expires)
}

// Revoke deletes the token with the given id.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	t.wmu.Lock() // one revoke of an id writes one tombstone
	defer t.wmu.Unlock()
	t.mu.RLock()
	var hash string
	for h, info := range t.byHash {
		if info.ID == id {
			hash = h
		}
	}
	t.mu.RUnlock()
	if hash == "" {
		return notFound{fmt.Errorf("%w: no token with id %q (sluice token list shows them)", ErrToken, id)}
	}
	if err := t.kv.Put(ctx, []byte(hash), nil); err != nil {
		return err
	}
	t.mu.Lock()
	delete(t.byHash, hash)
	t.mu.Unlock()
	return nil
}

// List returns the tokens' infos, oldest first.
func (t *Tokens) List() []TokenInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]TokenInfo, 0, len(t.byHash))
	for _, info := range t.byHash {
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
