package schema

import (
	"bytes"
	"encoding/json"
)

// The decoders of request bodies: the bytes come from outside, so they
// are strict about shape (fuzzed in decode_test.go) and lenient about
// fields they do not know (newer clients send metadata and rule sets).

// registerRequest is the body of a registration, a lookup and a
// compatibility check.
type registerRequest struct {
	Schema     *string     `json:"schema"`
	Type       string      `json:"schemaType"`
	References []Reference `json:"references"`
	ID         int         `json:"id"`
	Version    int         `json:"version"`
}

func decodeObject(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return badRequest("the request body must be a JSON object")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return badRequest("request body: %v", err)
	}
	if d.More() {
		return badRequest("request body: text after the JSON object")
	}
	return nil
}

// decodeSchemaRequest decodes a registration, lookup or compatibility
// request into the schema and the options it carries.
func decodeSchemaRequest(b []byte) (Schema, RegisterOptions, error) {
	var req registerRequest
	if err := decodeObject(b, &req); err != nil {
		return Schema{}, RegisterOptions{}, err
	}
	if req.Schema == nil {
		return Schema{}, RegisterOptions{}, errorf(CodeInvalidSchema, "Invalid schema: the request has no schema")
	}
	t, err := parseType(req.Type)
	if err != nil {
		return Schema{}, RegisterOptions{}, err
	}
	for _, ref := range req.References {
		if ref.Name == "" || ref.Subject == "" {
			return Schema{}, RegisterOptions{}, errorf(CodeInvalidSchema, "Invalid schema: a reference needs a name and a subject")
		}
		if ref.Version == 0 || ref.Version < latestVersion {
			return Schema{}, RegisterOptions{}, errorf(CodeInvalidSchema, "Invalid schema: reference %q has version %d", ref.Name, ref.Version)
		}
	}
	if req.ID < 0 {
		req.ID = 0
	}
	if req.Version < 0 {
		req.Version = 0
	}
	return Schema{Type: t, Text: *req.Schema, References: req.References}, RegisterOptions{ID: req.ID, Version: req.Version}, nil
}

// decodeConfigRequest decodes PUT /config: {"compatibility": LEVEL} (the
// level may also come as "compatibilityLevel", the name responses use).
func decodeConfigRequest(b []byte) (Config, error) {
	var req struct {
		Compatibility      string `json:"compatibility"`
		CompatibilityLevel string `json:"compatibilityLevel"`
		Normalize          bool   `json:"normalize"`
	}
	if err := decodeObject(b, &req); err != nil {
		return Config{}, err
	}
	l := req.Compatibility
	if l == "" {
		l = req.CompatibilityLevel
	}
	level, err := ParseLevel(l)
	if err != nil {
		return Config{}, err
	}
	return Config{Compatibility: level, Normalize: req.Normalize}, nil
}

// decodeModeRequest decodes PUT /mode: {"mode": MODE}.
func decodeModeRequest(b []byte) (Mode, error) {
	var req struct {
		Mode string `json:"mode"`
	}
	if err := decodeObject(b, &req); err != nil {
		return "", err
	}
	return ParseMode(req.Mode)
}
