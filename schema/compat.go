package schema

import "fmt"

// prior is an earlier version of a subject, compiled.
type prior struct {
	version int
	schema  parsed
}

// checked remembers the pairs of types a compatibility check has
// finished, each with the path where it was first found incompatible (""
// when compatible). A pair met again, as named types and references are
// in a diamond-shaped schema (two fields of one record type, level after
// level), is not checked again, which would take time exponential in the
// depth; an incompatible one is reported with a pointer to the first.
type checked[K comparable] map[K]string

// seenBefore reports whether the pair key was checked before, adding the
// message of a repeated incompatibility through fail.
func (c checked[K]) seenBefore(key K, path string, fail func(path, format string, args ...any)) bool {
	first, ok := c[key]
	if ok && first != "" {
		fail(path, "incompatible as at %s", first)
	}
	return ok
}

// record notes the result of checking key at path: incompatible when
// messages were added since before.
func (c checked[K]) record(key K, path string, before, after int) {
	if after > before {
		c[key] = path
	} else {
		c[key] = ""
	}
}

// checkCompatibility checks a candidate schema against earlier versions of
// a subject (oldest first) under a level, and returns why it is
// incompatible; nothing when it is compatible. BACKWARD: the candidate, as
// reader, reads data written with the latest version; FORWARD: the latest
// version reads the candidate's data; FULL: both; the _TRANSITIVE forms
// check every earlier version instead of the latest only; NONE nothing.
func checkCompatibility(level Level, candidate parsed, previous []prior) []string {
	if level == None || len(previous) == 0 {
		return nil
	}
	if !level.transitive() {
		previous = previous[len(previous)-1:]
	}
	var msgs []string
	for i := len(previous) - 1; i >= 0; i-- {
		p := previous[i]
		if level.backward() {
			for _, m := range candidate.canRead(p.schema) {
				msgs = append(msgs, fmt.Sprintf("reading data written with version %d: %s", p.version, m))
			}
		}
		if level.forward() {
			for _, m := range p.schema.canRead(candidate) {
				msgs = append(msgs, fmt.Sprintf("version %d reading data written with the new schema: %s", p.version, m))
			}
		}
	}
	return msgs
}
