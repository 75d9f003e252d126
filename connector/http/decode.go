package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrBadBody is matched by every error of DecodeBody.
var ErrBadBody = errors.New("bad request body")

// DecodeBody splits an ingest request body into its records and appends
// them to dst: either one JSON array whose elements are the records (a body
// that is exactly one JSON array), or JSON lines (one JSON value per line; blank lines and a trailing carriage
// return are ignored). Each record is the raw bytes of one JSON value, a
// subslice of body. An error (matching ErrBadBody) names the line or
// element at fault; the records decoded before it are returned too but a
// caller should accept none of them.
func DecodeBody(dst [][]byte, body []byte) ([][]byte, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' && json.Valid(body) {
		return decodeArray(dst, body)
	}
	return decodeLines(dst, body)
}

func decodeLines(dst [][]byte, body []byte) ([][]byte, error) {
	line := 0
	for len(body) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			l, body = body[:i], body[i+1:]
		} else {
			l, body = body, nil
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		if !json.Valid(l) {
			return dst, fmt.Errorf("%w: line %d is not one JSON value", ErrBadBody, line)
		}
		dst = append(dst, l)
	}
	return dst, nil
}

func decodeArray(dst [][]byte, body []byte) ([][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // '['
		return dst, fmt.Errorf("%w: %v", ErrBadBody, err)
	}
	for i := 0; dec.More(); i++ {
		start := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return dst, fmt.Errorf("%w: array element %d: %v", ErrBadBody, i, err)
		}
		end := dec.InputOffset()
		// The element's bytes in body, without the separator before it.
		elem := bytes.TrimLeft(body[start:end], " \t\r\n,")
		dst = append(dst, elem)
	}
	return dst, nil
}
