package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ContentType is the media type of the registry's responses.
const ContentType = "application/vnd.schemaregistry.v1+json"

// maxBody bounds a request body.
const maxBody = 1 << 20

// Roots are the path prefixes of the REST API, as Confluent's registry
// serves them at the root of its listener.
var Roots = []string{"/subjects", "/schemas", "/config", "/mode", "/compatibility", "/contexts"}

// Handler serves the Confluent Schema Registry REST API of a Registry.
type Handler struct {
	reg    *Registry
	logger *slog.Logger
}

// NewHandler returns the REST API of reg.
func NewHandler(reg *Registry, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return &Handler{reg: reg, logger: logger}
}

// Mount registers h on mux under Roots (each root and what is below it).
func (h *Handler) Mount(mux *http.ServeMux) {
	for _, root := range Roots {
		mux.Handle(root, h)
		mux.Handle(root+"/", h)
	}
}

// ReadOnlyRequest reports whether a request of the API only reads, though
// it may be a POST: a schema lookup under a subject and a compatibility
// check. An authoriser uses it to ask for read rather than write rights.
func ReadOnlyRequest(r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	if r.Method != http.MethodPost {
		return false
	}
	segs, err := segments(r.URL)
	if err != nil {
		return false
	}
	return len(segs) == 2 && segs[0] == "subjects" || len(segs) >= 1 && segs[0] == "compatibility"
}

// segments splits a URL's path into unescaped segments (a subject may
// hold an escaped slash).
func segments(u *url.URL) ([]string, error) {
	p := strings.Trim(u.EscapedPath(), "/")
	if p == "" {
		return nil, nil
	}
	raw := strings.Split(p, "/")
	out := make([]string, len(raw))
	for i, s := range raw {
		v, err := url.PathUnescape(s)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// request is one API call being served.
type request struct {
	w http.ResponseWriter
	r *http.Request
	q url.Values
}

func (c *request) flag(name string) bool {
	v, _ := strconv.ParseBool(c.q.Get(name))
	return v
}

func (c *request) reply(status int, v any) {
	c.w.Header().Set("Content-Type", ContentType)
	c.w.WriteHeader(status)
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error_code":50001,"message":"encoding the response failed"}`)
	}
	_, _ = c.w.Write(append(b, '\n'))
}

func (c *request) fail(err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = errorf(CodeStoreError, "%v", err)
	}
	c.reply(e.Status, struct {
		Code    int    `json:"error_code"`
		Message string `json:"message"`
	}{e.Code, e.Message})
}

func (c *request) notFound() {
	c.fail(&Error{Code: http.StatusNotFound, Status: http.StatusNotFound, Message: "HTTP 404 Not Found"})
}

func (c *request) methodNotAllowed() {
	c.fail(&Error{Code: http.StatusMethodNotAllowed, Status: http.StatusMethodNotAllowed, Message: "HTTP 405 Method Not Allowed"})
}

// body reads a request body in one of the media types the API accepts.
func (c *request) body() ([]byte, error) {
	if ct := c.r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			return nil, &Error{Code: http.StatusUnsupportedMediaType, Status: http.StatusUnsupportedMediaType, Message: "HTTP 415 Unsupported Media Type"}
		case mt == ContentType, mt == "application/vnd.schemaregistry+json", mt == "application/json", mt == "application/octet-stream":
		default:
			return nil, &Error{Code: http.StatusUnsupportedMediaType, Status: http.StatusUnsupportedMediaType, Message: "HTTP 415 Unsupported Media Type: use " + ContentType + " or application/json"}
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, maxBody))
	if err != nil {
		return nil, &Error{Code: http.StatusRequestEntityTooLarge, Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body: %v", err)}
	}
	return b, nil
}

func badRequest(format string, args ...any) *Error {
	return &Error{Code: http.StatusBadRequest, Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// ServeHTTP routes a request of the API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &request{w: w, r: r, q: r.URL.Query()}
	segs, err := segments(r.URL)
	if err != nil || len(segs) == 0 {
		c.notFound()
		return
	}
	switch segs[0] {
	case "subjects":
		h.subjects(c, segs[1:])
	case "schemas":
		h.schemas(c, segs[1:])
	case "config":
		h.config(c, segs[1:])
	case "mode":
		h.mode(c, segs[1:])
	case "compatibility":
		h.compatibility(c, segs[1:])
	case "contexts":
		if len(segs) != 1 {
			c.notFound()
		} else if r.Method != http.MethodGet {
			c.methodNotAllowed()
		} else {
			c.reply(http.StatusOK, []string{"."})
		}
	default:
		c.notFound()
	}
}

// schemaJSON is a schema in responses: type omitted for AVRO, as
// Confluent's registry does.
type schemaJSON struct {
	Subject    string      `json:"subject,omitempty"`
	Version    int         `json:"version,omitempty"`
	ID         int         `json:"id,omitempty"`
	Type       Type        `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	Schema     string      `json:"schema"`
}

func toJSON(ss SubjectSchema) schemaJSON {
	t := ss.Type
	if t == Avro {
		t = ""
	}
	return schemaJSON{Subject: ss.Subject, Version: ss.Version, ID: ss.ID, Type: t, References: ss.References, Schema: ss.Text}
}
