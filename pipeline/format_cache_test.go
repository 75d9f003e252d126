package pipeline

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluicehq/sluice/row"
)

// unknownIDs is a registry that knows no schema.
type unknownIDs struct{ registryClient }

func (unknownIDs) SchemaByID(context.Context, int) (sr.Schema, error) {
	return sr.Schema{}, &sr.ResponseError{StatusCode: http.StatusNotFound, ErrorCode: 40403, Message: "Schema not found"}
}

// TestSchemaCachesBounded: the schema ids of framed records and the
// writer schemas of container files come from the input, so a producer of
// endlessly many distinct ones (ids the registry does not know, one
// schema per HTTP request body) must not grow an input's caches without
// bound: at most 1024 entries each.
func TestSchemaCachesBounded(t *testing.T) {
	const n, bound = 3000, 1024
	target := row.MustSchema(row.Field{Name: "a"})
	ai := &avroInput{target: target, container: true, byText: map[[sha256.Size]byte]*avroProg{}, byID: map[uint32]*avroProg{}, reg: unknownIDs{}, regName: "test"}
	ps := newProtoSchemas(unknownIDs{}, "test")
	for i := range n {
		text := fmt.Sprintf(`{"type":"record","name":"R%d","fields":[{"name":"a","type":"long"}]}`, i)
		if _, err := ai.containerProgram([]byte(text)); err != nil {
			t.Fatal(err)
		}
		if _, err := ai.containerProgram([]byte(text[1:])); err == nil {
			t.Fatal("a bad schema text compiled")
		}
		if _, err := ai.program(uint32(i)); err == nil {
			t.Fatal("an unknown id has a program")
		}
		if _, err := ps.file(i); err == nil {
			t.Fatal("an unknown id has a file")
		}
	}
	if len(ai.byText) > bound || len(ai.byID) > bound || len(ps.byID) > bound {
		t.Errorf("after %d distinct schemas and ids: %d container schemas, %d avro ids, %d protobuf ids cached; want at most %d each",
			n, len(ai.byText), len(ai.byID), len(ps.byID), bound)
	}
}
