package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/schema"
)

// embeddedRegistry is Sluice's own schema registry on the embedded log of
// `sluice run` (the topic _schemas of --data-dir, which `sluice serve`
// serves from the same directory): the default registry of avro log
// sources and sinks. It is opened the first time a job asks it something,
// and spoken to as any registry is, through franz-go's sr client, whose
// requests go to the registry's REST handler in this process: the same
// API and answers as `sluice serve`'s, without a listener.
type embeddedRegistry struct {
	openLog func() (*logstore.Log, error)
	logger  *slog.Logger

	mu sync.Mutex
	h  http.Handler
}

// embeddedRegistryURL is the base URL the sr client is given; no request
// leaves the process.
const embeddedRegistryURL = "http://embedded-registry.sluice"

// client returns an sr client of the embedded registry.
func (e *embeddedRegistry) client() (*sr.Client, error) {
	c, err := sr.NewClient(sr.URLs(embeddedRegistryURL), sr.HTTPClient(&http.Client{Transport: e}), sr.UserAgent("sluice"))
	if err != nil {
		return nil, fmt.Errorf("embedded schema registry: %w", err)
	}
	return c, nil
}

// handler opens the registry the first time; a failure is returned, and
// the next request tries again.
func (e *embeddedRegistry) handler(r *http.Request) (http.Handler, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h != nil {
		return e.h, nil
	}
	l, err := e.openLog()
	if err != nil {
		return nil, fmt.Errorf("embedded schema registry: %w", err)
	}
	reg, err := schema.Open(r.Context(), l, e.logger)
	if err != nil {
		return nil, fmt.Errorf("embedded schema registry: %w", err)
	}
	e.h = schema.NewHandler(reg, e.logger)
	return e.h, nil
}

// RoundTrip serves the sr client's request with the registry's handler.
func (e *embeddedRegistry) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	h, err := e.handler(r)
	if err != nil {
		return nil, err
	}
	sreq := r.Clone(r.Context())
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	sreq.RequestURI = r.URL.RequestURI()
	w := &bufferedResponse{header: http.Header{}}
	h.ServeHTTP(w, sreq)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()),
		Request:       r,
	}, nil
}

// bufferedResponse is an http.ResponseWriter that keeps the response.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
