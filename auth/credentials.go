package auth

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/internal/kvtopic"
	"github.com/sluicehq/sluice/logstore"
)

// UsersTopic is the internal topic holding the SCRAM credentials.
const UsersTopic = "__sluice_users"

// Mechanism is a SASL mechanism whose credentials the store keeps.
type Mechanism string

// The SCRAM mechanisms, as Kafka names them.
const (
	ScramSHA256 Mechanism = "SCRAM-SHA-256"
	ScramSHA512 Mechanism = "SCRAM-SHA-512"
)

// Mechanisms lists the SCRAM mechanisms the store supports.
var Mechanisms = []Mechanism{ScramSHA256, ScramSHA512}

// ParseMechanism accepts a SCRAM mechanism name in any case
// ("scram-sha-256").
func ParseMechanism(s string) (Mechanism, error) {
	m := Mechanism(strings.ToUpper(s))
	if !slices.Contains(Mechanisms, m) {
		return "", fmt.Errorf("%w: %q (want SCRAM-SHA-256 or SCRAM-SHA-512)", ErrUnknownMechanism, s)
	}
	return m, nil
}

func (m Mechanism) hash() func() hash.Hash {
	if m == ScramSHA512 {
		return sha512.New
	}
	return sha256.New
}

// Iteration bounds, as Kafka's (4096 to 16384).
const (
	MinIterations     = 4096
	MaxIterations     = 16384
	DefaultIterations = 8192
)

var (
	// ErrUnknownMechanism: not SCRAM-SHA-256 or SCRAM-SHA-512.
	ErrUnknownMechanism = errors.New("unsupported SASL mechanism")
	// ErrUnknownUser: no credential for that user (and mechanism).
	ErrUnknownUser = errors.New("unknown user")
	// ErrBadCredential: iterations out of range, an empty salt or password,
	// or a bad user name.
	ErrBadCredential = errors.New("unacceptable credential")
)

// Credential is what the server stores for one user and mechanism
// (RFC 5802): never the password.
type Credential struct {
	Mechanism  Mechanism `json:"mechanism"`
	Salt       []byte    `json:"salt"`
	Iterations int       `json:"iterations"`
	StoredKey  []byte    `json:"stored_key"`
	ServerKey  []byte    `json:"server_key"`
}

// NewCredential derives a credential from a password with a fresh random
// salt.
func NewCredential(m Mechanism, password string, iterations int) (Credential, error) {
	if password == "" {
		return Credential{}, fmt.Errorf("%w: empty password", ErrBadCredential)
	}
	salt := make([]byte, 24)
	if _, err := rand.Read(salt); err != nil {
		return Credential{}, err
	}
	sp, err := SaltedPassword(m, password, salt, iterations)
	if err != nil {
		return Credential{}, err
	}
	return CredentialFromSalted(m, salt, sp, iterations)
}

// SaltedPassword is RFC 5802's Hi(password, salt, iterations).
func SaltedPassword(m Mechanism, password string, salt []byte, iterations int) ([]byte, error) {
	if iterations < MinIterations || iterations > MaxIterations {
		return nil, fmt.Errorf("%w: %d iterations, want %d to %d", ErrBadCredential, iterations, MinIterations, MaxIterations)
	}
	h := m.hash()
	return pbkdf2.Key(h, password, salt, iterations, h().Size())
}

// CredentialFromSalted builds the stored credential from a salted password
// (what Kafka's AlterUserScramCredentials carries).
func CredentialFromSalted(m Mechanism, salt, saltedPassword []byte, iterations int) (Credential, error) {
	if len(saltedPassword) == 0 {
		return Credential{}, fmt.Errorf("%w: empty salted password", ErrBadCredential)
	}
	h := m.hash()
	mac := func(key []byte, msg string) []byte {
		x := hmac.New(h, key)
		x.Write([]byte(msg))
		return x.Sum(nil)
	}
	clientKey := mac(saltedPassword, "Client Key")
	sum := h()
	sum.Write(clientKey)
	c := Credential{
		Mechanism: m, Salt: slices.Clone(salt), Iterations: iterations,
		StoredKey: sum.Sum(nil), ServerKey: mac(saltedPassword, "Server Key"),
	}
	return c, c.validate()
}

func (c Credential) validate() error {
	if !slices.Contains(Mechanisms, c.Mechanism) {
		return fmt.Errorf("%w: %q", ErrUnknownMechanism, c.Mechanism)
	}
	if c.Iterations < MinIterations || c.Iterations > MaxIterations {
		return fmt.Errorf("%w: %d iterations, want %d to %d", ErrBadCredential, c.Iterations, MinIterations, MaxIterations)
	}
	if len(c.Salt) == 0 || len(c.StoredKey) == 0 || len(c.ServerKey) == 0 {
		return fmt.Errorf("%w: empty salt or keys", ErrBadCredential)
	}
	return nil
}

// Matches reports whether password is the one c was made from (used for
// SASL PLAIN, which sends the password, against SCRAM-stored credentials).
func (c Credential) Matches(password string) bool {
	sp, err := SaltedPassword(c.Mechanism, password, c.Salt, c.Iterations)
	if err != nil {
		return false
	}
	d, err := CredentialFromSalted(c.Mechanism, c.Salt, sp, c.Iterations)
	return err == nil && subtle.ConstantTimeCompare(d.StoredKey, c.StoredKey) == 1
}

// UserInfo describes a user's credentials without their secrets.
type UserInfo struct {
	Name       string
	Mechanisms []MechanismInfo
}

// MechanismInfo is one mechanism a user has a credential for.
type MechanismInfo struct {
	Mechanism  Mechanism
	Iterations int
}

// Store holds the users' credentials, durable in the internal topic
// __sluice_users of a log. It is safe for concurrent use.
type Store struct {
	kv *kvtopic.Topic
	// write is kv.Put (a seam for fault-injection tests).
	write func(ctx context.Context, key, value []byte) error

	// wmu serialises Set and Delete: each writes its record and applies it
	// to creds under it, so that creds applies the writes in the log's
	// order (two unserialised writes of one user could land in the log in
	// one order and in memory in the other, leaving a password in effect
	// that the log no longer holds).
	wmu sync.Mutex
	// onWait, when set, is called by a writer about to wait for wmu
	// (tests).
	onWait func()

	mu    sync.RWMutex
	creds map[string]map[Mechanism]Credential
}

// lockWrites takes wmu.
func (s *Store) lockWrites() {
	if s.wmu.TryLock() {
		return
	}
	if s.onWait != nil {
		s.onWait()
	}
	s.wmu.Lock()
}

// ValidUserName refuses names that cannot be a Kafka principal or SCRAM
// user: empty, over 256 bytes, or holding control characters, ',' or '='
// (SCRAM escapes them, Kafka refuses them).
func ValidUserName(name string) error {
	if name == "" || len(name) > 256 {
		return fmt.Errorf("%w: user name must have 1 to 256 bytes", ErrBadCredential)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == ',' || r == '=' {
			return fmt.Errorf("%w: user name %q has character %q", ErrBadCredential, name, r)
		}
	}
	return nil
}

// AnonymousUser is the name of the principal User:ANONYMOUS, which a
// connection has when it did not authenticate (PLAINTEXT and one-way SSL
// listeners). It is reserved: a credential for it would let a client log
// in as every unauthenticated connection (and as a super user where
// --super-user User:ANONYMOUS keeps local tools working).
const AnonymousUser = "ANONYMOUS"

// NewUserName checks the name of a user about to be given a credential:
// ValidUserName, and not the reserved AnonymousUser.
func NewUserName(name string) error {
	if err := ValidUserName(name); err != nil {
		return err
	}
	if name == AnonymousUser {
		return fmt.Errorf("%w: user name %s is reserved: User:%s is the principal of connections that did not authenticate", ErrBadCredential, name, name)
	}
	return nil
}

// OpenStore opens the credential store of l, creating its internal topic
// (compacted, fsync always) on first use, and reads it into memory. Open
// it once per log.
func OpenStore(ctx context.Context, l *logstore.Log) (*Store, error) {
	kv, err := kvtopic.Open(l, UsersTopic)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	s := &Store{kv: kv, write: kv.Put, creds: map[string]map[Mechanism]Credential{}}
	err = kv.Replay(ctx, func(k, v []byte) {
		user, mech, ok := splitKey(k)
		if !ok {
			return // not ours: skipped
		}
		if v == nil {
			s.remove(user, mech)
			return
		}
		var c Credential
		if err := json.Unmarshal(v, &c); err == nil && c.Mechanism == mech {
			s.put(user, c)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	return s, nil
}

func key(user string, m Mechanism) []byte { return []byte(user + "\x00" + string(m)) }

func splitKey(k []byte) (string, Mechanism, bool) {
	u, m, ok := strings.Cut(string(k), "\x00")
	return u, Mechanism(m), ok && u != "" && slices.Contains(Mechanisms, Mechanism(m))
}

func (s *Store) put(user string, c Credential) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.creds[user] == nil {
		s.creds[user] = map[Mechanism]Credential{}
	}
	s.creds[user][c.Mechanism] = c
}

func (s *Store) remove(user string, m Mechanism) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.creds[user], m)
	if len(s.creds[user]) == 0 {
		delete(s.creds, user)
	}
}

// Set stores (or replaces) user's credential, durably. The reserved
// AnonymousUser is refused (ErrBadCredential).
func (s *Store) Set(ctx context.Context, user string, c Credential) error {
	if err := NewUserName(user); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	s.lockWrites()
	defer s.wmu.Unlock()
	if err := s.write(ctx, key(user, c.Mechanism), v); err != nil {
		return fmt.Errorf("credentials: store %s/%s: %w", user, c.Mechanism, err)
	}
	s.put(user, c)
	return nil
}

// Delete removes user's credential for m, durably (ErrUnknownUser if none).
func (s *Store) Delete(ctx context.Context, user string, m Mechanism) error {
	s.lockWrites()
	defer s.wmu.Unlock()
	if _, ok := s.Lookup(user, m); !ok {
		return fmt.Errorf("%w: %s has no %s credential", ErrUnknownUser, user, m)
	}
	if err := s.write(ctx, key(user, m), nil); err != nil {
		return fmt.Errorf("credentials: delete %s/%s: %w", user, m, err)
	}
	s.remove(user, m)
	return nil
}

// Lookup returns user's credential for m.
func (s *Store) Lookup(user string, m Mechanism) (Credential, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.creds[user][m]
	return c, ok
}

// CheckPassword reports whether password is user's, by any of its stored
// credentials (SASL PLAIN).
func (s *Store) CheckPassword(user, password string) bool {
	s.mu.RLock()
	var cs []Credential
	for _, c := range s.creds[user] {
		cs = append(cs, c)
	}
	s.mu.RUnlock()
	for _, c := range cs {
		if c.Matches(password) {
			return true
		}
	}
	return false
}

// Users lists the users with their mechanisms, sorted by name.
func (s *Store) Users() []UserInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]UserInfo, 0, len(s.creds))
	for name, ms := range s.creds {
		u := UserInfo{Name: name}
		for m, c := range ms {
			u.Mechanisms = append(u.Mechanisms, MechanismInfo{Mechanism: m, Iterations: c.Iterations})
		}
		sort.Slice(u.Mechanisms, func(i, j int) bool { return u.Mechanisms[i].Mechanism < u.Mechanisms[j].Mechanism })
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
