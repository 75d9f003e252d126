package pipeline

import (
	"errors"
	"fmt"
	"strings"
)

// SpecError is a problem with a pipeline spec, located in its file. Every
// error Parse and Validate return for a bad spec is (or wraps) one.
type SpecError struct {
	File   string
	Line   int
	Column int
	// Field is the path of the offending key, like "steps[2].window.tumbling".
	Field string
	// Msg says what is wrong and what is allowed there.
	Msg string
}

func (e *SpecError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString("<spec>")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// SpecErrors is several spec errors, reported together.
type SpecErrors []*SpecError

func (es SpecErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap returns the individual errors, for errors.As.
func (es SpecErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// ErrTolerance is wrapped by the error that fails a job under
// errors.tolerance: none when a record cannot be processed.
var ErrTolerance = errors.New("record failed under errors.tolerance: none")
