package objstoretest

import (
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/sluicehq/sluice/objstore"
)

// Server is an S3-compatible server running in the test process.
type Server struct {
	// Endpoint is its base URL (http://127.0.0.1:PORT).
	Endpoint string
	srv      *httptest.Server
	backend  *s3mem.Backend
}

// StartServer starts a server, closed when the test ends. It serves the
// S3 protocol over HTTP on loopback and keeps objects in memory, so a
// child process (a `sluice serve` killed and restarted by a test) can use
// it and find its objects again.
func StartServer(t testing.TB) *Server {
	t.Helper()
	b := s3mem.New()
	fake := gofakes3.New(b, gofakes3.WithLogger(gofakes3.DiscardLog()), gofakes3.WithoutVersioning())
	srv := httptest.NewServer(fake.Server())
	t.Cleanup(srv.Close)
	return &Server{Endpoint: srv.URL, srv: srv, backend: b}
}

// Bucket creates a bucket and returns the Config of s3://name/prefix on
// this server, with static credentials (the server accepts any).
func (s *Server) Bucket(t testing.TB, name, prefix string) objstore.Config {
	t.Helper()
	if err := s.backend.CreateBucket(name); err != nil && !gofakes3.IsAlreadyExists(err) {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	url := "s3://" + name
	if prefix != "" {
		url += "/" + prefix
	}
	return objstore.Config{URL: url, Endpoint: s.Endpoint, Region: "us-east-1", AccessKey: "test", SecretKey: "testsecret"}
}

// Env returns the environment a child process needs to reach the server
// with the AWS conventions Sluice follows.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=testsecret", "AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=" + s.Endpoint}
}

// Open starts a server, makes a bucket and opens a Store on it.
func Open(t testing.TB) objstore.Store {
	t.Helper()
	cfg := StartServer(t).Bucket(t, "sluice-test", "prefix/a")
	st, err := objstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
