package schema

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
)

// Query parameters of Confluent's API beyond the basic ones: pagination
// (offset and limit on the lists), fetchMaxId on a schema by id, and
// format=serialized for Protobuf schemas (the compiled file descriptor,
// as Confluent's Protobuf serializers in Python and Go ask for it).

// page applies offset and limit (Confluent's defaults: 0 and -1, no
// limit) to a list. A value that is not a number is a 400.
func page[T any](c *request, items []T) ([]T, bool) {
	off, lim := 0, -1
	for _, p := range []struct {
		name string
		v    *int
	}{{"offset", &off}, {"limit", &lim}} {
		s := c.q.Get(p.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			c.fail(badRequest("%s=%q is not a number", p.name, s))
			return nil, false
		}
		*p.v = n
	}
	if off < 0 {
		off = 0
	}
	if off > len(items) {
		off = len(items)
	}
	items = items[off:]
	if lim >= 0 && lim < len(items) {
		items = items[:lim]
	}
	if items == nil {
		items = []T{}
	}
	return items, true
}

// replyPage replies with a page of items.
func replyPage[T any](c *request, items []T) {
	if p, ok := page(c, items); ok {
		c.reply(http.StatusOK, p)
	}
}

// MaxID returns the highest schema id ever given (0 before the first).
func (r *Registry) MaxID() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.st.maxID
}

// SerializedProtobuf returns Protobuf schema id as Confluent's
// format=serialized gives it: its compiled FileDescriptorProto (without
// source positions), base64-encoded.
func (r *Registry) SerializedProtobuf(id int) (string, error) {
	r.mu.RLock()
	p, err := r.compile(id)
	r.mu.RUnlock()
	if err != nil {
		return "", err
	}
	ps, ok := p.(*protobufSchema)
	if !ok {
		return "", fmt.Errorf("schema %d is not PROTOBUF", id)
	}
	fdp := protodesc.ToFileDescriptorProto(ps.fd)
	fdp.SourceCodeInfo = nil
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(fdp)
	if err != nil {
		return "", fmt.Errorf("encode descriptor of schema %d: %w", id, err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// formatted applies format=serialized to a Protobuf schema in a
// response; other formats and types are left as they are (Confluent
// ignores a format that does not apply to the type).
func (h *Handler) formatted(c *request, out *schemaJSON) bool {
	if c.q.Get("format") != "serialized" || out.Type != Protobuf {
		return true
	}
	text, err := h.reg.SerializedProtobuf(out.ID)
	if err != nil {
		c.fail(err)
		return false
	}
	out.Schema = text
	return true
}
