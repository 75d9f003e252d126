package schema

import (
	"net/http"
)

// subjects serves /subjects/...
func (h *Handler) subjects(c *request, segs []string) {
	m := c.r.Method
	switch len(segs) {
	case 0:
		if m != http.MethodGet {
			c.methodNotAllowed()
			return
		}
		replyPage(c, h.reg.Subjects(c.q.Get("subjectPrefix"), c.flag("deleted"), c.flag("deletedOnly")))
		return
	case 1:
		subject := segs[0]
		switch m {
		case http.MethodPost:
			b, err := c.body()
			if err != nil {
				c.fail(err)
				return
			}
			s, _, err := decodeSchemaRequest(b)
			if err != nil {
				c.fail(err)
				return
			}
			ss, err := h.reg.Lookup(subject, s, c.flag("deleted"))
			if err != nil {
				c.fail(err)
				return
			}
			c.reply(http.StatusOK, toJSON(ss))
		case http.MethodDelete:
			versions, err := h.reg.DeleteSubject(c.r.Context(), subject, c.flag("permanent"))
			if err != nil {
				c.fail(err)
				return
			}
			c.reply(http.StatusOK, versions)
		default:
			c.methodNotAllowed()
		}
		return
	}
	subject := segs[0]
	if segs[1] != "versions" {
		c.notFound()
		return
	}
	if len(segs) == 2 {
		switch m {
		case http.MethodGet:
			vs, err := h.reg.Versions(subject, c.flag("deleted"))
			if err != nil {
				c.fail(err)
				return
			}
			replyPage(c, vs)
		case http.MethodPost:
			b, err := c.body()
			if err != nil {
				c.fail(err)
				return
			}
			s, opts, err := decodeSchemaRequest(b)
			if err != nil {
				c.fail(err)
				return
			}
			ss, err := h.reg.Register(c.r.Context(), subject, s, opts)
			if err != nil {
				c.fail(err)
				return
			}
			c.reply(http.StatusOK, struct {
				ID int `json:"id"`
			}{ss.ID})
		default:
			c.methodNotAllowed()
		}
		return
	}
	version, err := parseVersion(segs[2])
	if err != nil {
		c.fail(err)
		return
	}
	switch {
	case len(segs) == 3 && m == http.MethodGet:
		ss, err := h.reg.Version(subject, version, c.flag("deleted"))
		if err != nil {
			c.fail(err)
			return
		}
		out := toJSON(ss)
		if h.formatted(c, &out) {
			c.reply(http.StatusOK, out)
		}
	case len(segs) == 3 && m == http.MethodDelete:
		v, err := h.reg.DeleteVersion(c.r.Context(), subject, version, c.flag("permanent"))
		if err != nil {
			c.fail(err)
			return
		}
		c.reply(http.StatusOK, v)
	case len(segs) == 4 && segs[3] == "schema" && m == http.MethodGet:
		ss, err := h.reg.Version(subject, version, c.flag("deleted"))
		if err != nil {
			c.fail(err)
			return
		}
		c.w.Header().Set("Content-Type", ContentType)
		_, _ = c.w.Write([]byte(ss.Text))
	case len(segs) == 4 && segs[3] == "referencedby" && m == http.MethodGet:
		ids, err := h.reg.ReferencedBy(subject, version)
		if err != nil {
			c.fail(err)
			return
		}
		c.reply(http.StatusOK, ids)
	case len(segs) == 3 || len(segs) == 4 && (segs[3] == "schema" || segs[3] == "referencedby"):
		c.methodNotAllowed()
	default:
		c.notFound()
	}
}

// compatibility serves POST /compatibility/subjects/{s}/versions[/{v}].
func (h *Handler) compatibility(c *request, segs []string) {
	if len(segs) < 3 || len(segs) > 4 || segs[0] != "subjects" || segs[2] != "versions" {
		c.notFound()
		return
	}
	if c.r.Method != http.MethodPost {
		c.methodNotAllowed()
		return
	}
	version := 0
	if len(segs) == 4 {
		v, err := parseVersion(segs[3])
		if err != nil {
			c.fail(err)
			return
		}
		version = v
	}
	b, err := c.body()
	if err != nil {
		c.fail(err)
		return
	}
	s, _, err := decodeSchemaRequest(b)
	if err != nil {
		c.fail(err)
		return
	}
	msgs, err := h.reg.CheckCompatibility(segs[1], version, s)
	if err != nil {
		c.fail(err)
		return
	}
	resp := struct {
		Is       bool     `json:"is_compatible"`
		Messages []string `json:"messages,omitempty"`
	}{Is: len(msgs) == 0}
	if c.flag("verbose") {
		resp.Messages = msgs
	}
	c.reply(http.StatusOK, resp)
}
