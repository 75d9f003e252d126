package schema

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluicehq/sluice/logstore"
)

// testRegistry is a registry on a log in a directory of its own, served
// over HTTP to a franz-go pkg/sr client.
type testRegistry struct {
	t   *testing.T
	dir string
	log *logstore.Log
	reg *Registry
	srv *httptest.Server
	cl  *sr.Client
}

func openTestLog(t *testing.T, dir string) *logstore.Log {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), RetentionCheckInterval: -1, Cleaner: logstore.CleanerOptions{Interval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{t: t, dir: t.TempDir()}
	tr.open()
	t.Cleanup(tr.close)
	return tr
}

func (tr *testRegistry) open() {
	tr.t.Helper()
	tr.log = openTestLog(tr.t, tr.dir)
	reg, err := Open(context.Background(), tr.log, slog.New(slog.DiscardHandler))
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.reg = reg
	tr.srv = httptest.NewServer(NewHandler(reg, nil))
	cl, err := sr.NewClient(sr.URLs(tr.srv.URL))
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.cl = cl
}

func (tr *testRegistry) close() {
	if tr.srv == nil {
		return
	}
	tr.srv.Close()
	if err := tr.log.Close(); err != nil {
		tr.t.Error(err)
	}
	tr.srv = nil
}

// restart closes the log and opens the registry again from it.
func (tr *testRegistry) restart() {
	tr.close()
	tr.open()
}

// wantCode asserts that err is a registry error with the given error code.
func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	var re *sr.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a registry error with code %d", err, code)
	}
	if re.ErrorCode != code {
		t.Fatalf("got error code %d (%s), want %d", re.ErrorCode, re.Message, code)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
