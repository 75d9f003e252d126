package schema

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// call makes a raw request and decodes the JSON answer.
func call(t *testing.T, h http.Handler, method, path, contentType, body string) (int, string, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return rec.Code, rec.Header().Get("Content-Type"), m
}

func TestHTTPErrorsAndMediaTypes(t *testing.T) {
	tr := newTestRegistry(t)
	// Mounted on a ServeMux as sluice serve mounts it.
	mux := http.NewServeMux()
	NewHandler(tr.reg, nil).Mount(mux)

	reg := `{"schema":"\"string\""}`
	for _, ct := range []string{ContentType, "application/json", "application/vnd.schemaregistry+json; charset=utf-8", ""} {
		code, got, m := call(t, mux, "POST", "/subjects/a%2Fb/versions", ct, reg)
		if code != 200 || got != ContentType || m["id"] != float64(1) {
			t.Fatalf("register with content type %q: %d %s %v", ct, code, got, m)
		}
	}
	// The subject with an escaped slash is one subject.
	if code, _, m := call(t, mux, "GET", "/subjects/a%2Fb/versions/latest", "", ""); code != 200 || m["subject"] != "a/b" {
		t.Fatalf("get subject with a slash: %d %v", code, m)
	}
	cases := []struct {
		method, path, ct, body string
		status, code           int
	}{
		{"POST", "/subjects/s/versions", "text/plain", reg, 415, 415},
		{"POST", "/subjects/s/versions", ContentType, `not json`, 400, 400},
		{"POST", "/subjects/s/versions", ContentType, `{"schema": 12}`, 400, 400},
		{"POST", "/subjects/s/versions", ContentType, `{}`, 422, CodeInvalidSchema},
		{"POST", "/subjects/s/versions", ContentType, `{"schema":"{\"type\":\"nope\"}"}`, 422, CodeInvalidSchema},
		{"POST", "/subjects/s/versions", ContentType, `{"schema":"\"int\"","schemaType":"XML"}`, 422, CodeInvalidSchema},
		{"POST", "/subjects/s/versions", ContentType, `{"schema":"\"int\"","references":[{"name":"x"}]}`, 422, CodeInvalidSchema},
		{"POST", "/subjects/%01/versions", ContentType, reg, 422, CodeInvalidSubject},
		{"GET", "/subjects/a%2Fb/versions/abc", "", "", 422, CodeInvalidVersion},
		{"GET", "/subjects/a%2Fb/versions/0", "", "", 422, CodeInvalidVersion},
		{"GET", "/subjects/a%2Fb/versions/2", "", "", 404, CodeVersionNotFound},
		{"GET", "/subjects/none/versions", "", "", 404, CodeSubjectNotFound},
		{"GET", "/schemas/ids/77", "", "", 404, CodeSchemaNotFound},
		{"GET", "/schemas/ids/x", "", "", 404, CodeSchemaNotFound},
		{"GET", "/schemas/elsewhere", "", "", 404, 404},
		{"PUT", "/subjects", ContentType, `{}`, 405, 405},
		{"GET", "/subjects/a%2Fb/versions/1/nothing", "", "", 404, 404},
		{"PUT", "/config", ContentType, `{"compatibility":"SOME"}`, 422, CodeInvalidCompatibilityLevel},
		{"PUT", "/mode", ContentType, `{"mode":"SOME"}`, 422, CodeInvalidMode},
		{"GET", "/config/none", "", "", 404, CodeSubjectCompatNotConfigured},
		{"GET", "/mode/none", "", "", 404, CodeSubjectModeNotConfigured},
		{"POST", "/compatibility/subjects/none/versions/latest", ContentType, reg, 404, CodeSubjectNotFound},
		{"POST", "/compatibility/subjects/a%2Fb", ContentType, reg, 404, 404},
	}
	for _, c := range cases {
		status, ct, m := call(t, mux, c.method, c.path, c.ct, c.body)
		if status != c.status || m["error_code"] != float64(c.code) || m["message"] == "" || ct != ContentType {
			t.Errorf("%s %s %s: got %d %s %v, want status %d error_code %d", c.method, c.path, c.body, status, ct, m, c.status, c.code)
		}
	}
	// A compatibility check of a subject with no version, against all
	// versions, is compatible.
	if status, _, m := call(t, mux, "POST", "/compatibility/subjects/none/versions", ContentType, reg); status != 200 || m["is_compatible"] != true {
		t.Fatalf("check against no versions: %d %v", status, m)
	}
	// The raw schema of a version.
	req := httptest.NewRequest("GET", "/subjects/a%2Fb/versions/1/schema", nil)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != `"string"` {
		t.Fatalf("raw schema: %d %q", rec.Code, rec.Body.String())
	}
	if status, _, m := call(t, mux, "GET", "/config", "", ""); status != 200 || m["compatibilityLevel"] != "BACKWARD" {
		t.Fatalf("global config: %d %v", status, m)
	}
}

func TestReadOnlyRequest(t *testing.T) {
	for _, c := range []struct {
		method, path string
		read         bool
	}{
		{"GET", "/subjects/s/versions", true},
		{"POST", "/subjects/s", true},                          // lookup
		{"POST", "/subjects/s/", true},                         // lookup, trailing slash
		{"POST", "/compatibility/subjects/s/versions/1", true}, // check
		{"POST", "/subjects/s/versions", false},                // register
		{"DELETE", "/subjects/s", false},
		{"PUT", "/config", false},
	} {
		req := httptest.NewRequest(c.method, c.path, nil)
		if got := ReadOnlyRequest(req); got != c.read {
			t.Errorf("%s %s: read-only %v, want %v", c.method, c.path, got, c.read)
		}
	}
}
