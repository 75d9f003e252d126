package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// RegistrySpec says where a Confluent-compatible schema registry is and
// how to authenticate to it: the spec's top-level `registry:` block, or a
// source's or sink's own (which overrides it).
type RegistrySpec struct {
	Pos Pos
	// URLs are tried in order.
	URLs []string
	// Username and Password authenticate with HTTP basic auth; Token with
	// a bearer token. At most one of the two.
	Username string
	Password Secret
	Token    Secret
}

func parseRegistry(e *errs, o *obj) *RegistrySpec {
	r := &RegistrySpec{Pos: Pos{File: e.file, Line: o.node.Line, Column: o.node.Column, Field: o.path}}
	r.URLs = o.strList("url")
	if len(r.URLs) == 0 {
		e.at(o.node, o.sub("url"), "is required: the registry's base URL, like http://localhost:8081 (or a list of them)")
	}
	for _, u := range r.URLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			e.at(o.get("url"), o.sub("url"), "%q is not an http:// or https:// URL", u)
		}
	}
	r.Username = o.str("username", "")
	r.Password = Secret(o.str("password", ""))
	r.Token = Secret(o.str("token", ""))
	if r.Token != "" && (r.Username != "" || r.Password != "") {
		e.at(o.get("token"), o.sub("token"), "give either token (bearer) or username and password (basic auth), not both")
	}
	if (r.Username == "") != (r.Password == "") {
		e.at(o.node, o.path, "username and password go together")
	}
	o.done("url", "username", "password", "token")
	return r
}

// registryClient is a schema registry client with the few calls the avro
// format needs; tests may replace it.
type registryClient interface {
	SchemaByID(ctx context.Context, id int) (sr.Schema, error)
	SchemaByVersion(ctx context.Context, subject string, version int) (sr.SubjectSchema, error)
	CreateSchema(ctx context.Context, subject string, s sr.Schema) (sr.SubjectSchema, error)
}

// client returns a franz-go schema registry client for r.
func (r *RegistrySpec) client() (*sr.Client, error) {
	opts := []sr.ClientOpt{sr.URLs(r.URLs...), sr.HTTPClient(&http.Client{Timeout: registryTimeout}), sr.UserAgent("sluice")}
	switch {
	case r.Token != "":
		opts = append(opts, sr.BearerToken(string(r.Token)))
	case r.Username != "":
		opts = append(opts, sr.BasicAuth(r.Username, string(r.Password)))
	}
	c, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry %s: %w", strings.Join(r.URLs, ","), err)
	}
	return c, nil
}

// registryTimeout bounds one request to a registry.
const registryTimeout = 10 * time.Second

// registryAttempts is how often a request that failed without an answer
// from the registry (a refused connection, a timeout, a 5xx) is tried
// before the job fails.
const registryAttempts = 3

// notFound reports whether err is the registry saying that what was asked
// for does not exist (the record, not the registry, is at fault).
func notFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// clientError reports whether the registry refused the request itself
// (4xx): trying again will not help.
func clientError(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500
}

// withRetry calls f up to registryAttempts times while it fails without a
// 4xx answer, waiting a little longer each time.
func withRetry[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for i := range registryAttempts {
		if i > 0 {
			t := time.NewTimer(time.Duration(i*i) * 200 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return v, ctx.Err()
			case <-t.C:
			}
		}
		v, err = f(ctx)
		if err == nil || clientError(err) {
			return v, err
		}
	}
	return v, err
}
