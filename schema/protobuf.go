package schema

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Protobuf schemas are .proto source files compiled with
// github.com/bufbuild/protocompile (a pure-Go compiler that links to
// google.golang.org/protobuf descriptors, so neither protoc nor generated
// code is needed). A reference's name is the path the schema imports it
// by; the well-known types (google/protobuf/*.proto) resolve without one,
// as with Confluent's registry. Nothing is read from the file system.

// mainProtoFile picks the path the schema under compilation is given
// (error messages name it): schema.proto, unless a reference is named so.
func mainProtoFile(srcs map[string]string) string {
	name := "schema.proto"
	for i := 1; ; i++ {
		if _, taken := srcs[name]; !taken {
			return name
		}
		name = fmt.Sprintf("schema-%d.proto", i)
	}
}

type protobufSchema struct {
	fd    protoreflect.FileDescriptor
	canon string
}

func parseProtobuf(text string, deps []dependency) (*protobufSchema, error) {
	srcs := map[string]string{}
	for _, d := range deps {
		if d.schema.Type != Protobuf {
			return nil, fmt.Errorf("reference %q is a %s schema, not PROTOBUF", d.name, d.schema.Type)
		}
		srcs[d.name] = d.schema.Text
	}
	main := mainProtoFile(srcs)
	srcs[main] = text
	fd, err := CompileProtobuf(srcs, main)
	if err != nil {
		return nil, err
	}
	// The identity of a Protobuf schema is its compiled descriptor
	// (without source positions and comments): white space, comments and
	// the order of options do not make a new schema.
	fdp := protodesc.ToFileDescriptorProto(fd)
	fdp.Name = nil
	fdp.SourceCodeInfo = nil
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(fdp)
	if err != nil {
		return nil, fmt.Errorf("encode descriptor: %w", err)
	}
	return &protobufSchema{fd: fd, canon: string(b)}, nil
}

func (p *protobufSchema) canonical() string { return p.canon }

func (p *protobufSchema) canRead(writer parsed) []string {
	w, ok := writer.(*protobufSchema)
	if !ok {
		return []string{"the schemas are of different types"}
	}
	d := protoDiff{seen: map[protoreflect.FullName]bool{}, done: checked[[2]protoreflect.FullName]{}}
	d.file(w.fd, p.fd)
	slices.Sort(d.msgs)
	return d.msgs
}
