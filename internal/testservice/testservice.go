// Package testservice finds the local servers that connector tests talk
// to (Mosquitto, NATS, ...) and names the throwaway resources they create.
// It is for tests only.
package testservice

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"testing"
	"time"
)

// Addr returns the HOST:PORT of a test server: the environment variable
// env when set, def otherwise. When nothing accepts a connection there the
// test is skipped, saying which server (what) is missing and how to get
// one.
func Addr(t testing.TB, env, def, what string) string {
	t.Helper()
	addr := os.Getenv(env)
	if addr == "" {
		addr = def
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Skipf("no %s at %s (set %s; scripts/start-services.sh starts it): %v", what, addr, env, err)
	}
	_ = c.Close()
	return addr
}

// Suffix returns 10 random hex digits, for names of queues, streams and
// topics that must not collide between tests and runs.
func Suffix() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
