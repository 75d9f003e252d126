package schema

import (
	"fmt"

	"github.com/sluicehq/sluice/internal/avrolimit"
)

// Limits on the schemas clients send, checked before a schema is handed
// to its language's parser: for Avro those of internal/avrolimit (hamba's
// check of defaults takes time exponential in a crafted schema's size),
// for the others the size.
const (
	// maxSchemaBytes bounds a schema's text (the HTTP API's request
	// bodies are bounded by the same size).
	maxSchemaBytes = avrolimit.MaxBytes
	// The Avro limits, named here for the tests.
	maxSchemaDepth    = avrolimit.MaxDepth
	maxAvroNamedTypes = avrolimit.MaxNamedTypes
)

// checkSizeLimit refuses a schema text over maxSchemaBytes.
func checkSizeLimit(text string) error {
	if len(text) > maxSchemaBytes {
		return fmt.Errorf("the schema has %d bytes, more than the limit of %d", len(text), maxSchemaBytes)
	}
	return nil
}

// checkAvroLimits refuses an Avro schema (with the texts of its
// dependencies, whose named types it may use) over the limits.
func checkAvroLimits(text string, deps []string) error { return avrolimit.Check(text, deps) }
