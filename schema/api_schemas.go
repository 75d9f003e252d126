package schema

import (
	"net/http"
	"strconv"
)

// schemas serves /schemas/...
func (h *Handler) schemas(c *request, segs []string) {
	if c.r.Method != http.MethodGet {
		c.methodNotAllowed()
		return
	}
	switch {
	case len(segs) == 0:
		all := h.reg.AllSchemas(c.q.Get("subjectPrefix"), c.flag("deleted"), c.flag("latestOnly"))
		out := make([]schemaJSON, len(all))
		for i, ss := range all {
			out[i] = toJSON(ss)
		}
		replyPage(c, out)
		return
	case len(segs) == 1 && segs[0] == "types":
		c.reply(http.StatusOK, Types)
		return
	case len(segs) < 2 || len(segs) > 3 || segs[0] != "ids":
		c.notFound()
		return
	}
	id, err := strconv.Atoi(segs[1])
	if err != nil || id <= 0 {
		c.fail(errorf(CodeSchemaNotFound, "Schema %s not found", segs[1]))
		return
	}
	if len(segs) == 2 || segs[2] == "schema" {
		s, err := h.reg.SchemaByID(id)
		if err != nil {
			c.fail(err)
			return
		}
		if len(segs) == 3 {
			c.w.Header().Set("Content-Type", ContentType)
			_, _ = c.w.Write([]byte(s.Text))
			return
		}
		out := toJSON(SubjectSchema{Schema: s})
		out.ID = id
		if !h.formatted(c, &out) {
			return
		}
		out.ID = 0 // not part of this answer
		if c.flag("fetchMaxId") {
			c.reply(http.StatusOK, struct {
				schemaJSON
				MaxID int `json:"maxId"`
			}{out, h.reg.MaxID()})
			return
		}
		c.reply(http.StatusOK, out)
		return
	}
	switch segs[2] {
	case "versions":
		vs, err := h.reg.VersionsByID(id, c.flag("deleted"))
		if err != nil {
			c.fail(err)
			return
		}
		replyPage(c, vs)
	case "subjects":
		vs, err := h.reg.VersionsByID(id, c.flag("deleted"))
		if err != nil {
			c.fail(err)
			return
		}
		subjects := []string{}
		for _, v := range vs {
			if len(subjects) == 0 || subjects[len(subjects)-1] != v.Subject {
				subjects = append(subjects, v.Subject)
			}
		}
		replyPage(c, subjects)
	default:
		c.notFound()
	}
}
