package schema

import (
	"context"
	"encoding/base64"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// A Protobuf schema's text is either .proto source or, as Confluent's
// registry also accepts and as Confluent's Python serializer registers
// it, a base64-encoded FileDescriptorProto (protoc's serialized form of
// the compiled file). Both compile to the same kind of descriptor here;
// a schema and its references may mix the two forms.

// serializedDescriptor returns the FileDescriptorProto of a schema text
// in the serialized form, or nil when the text is .proto source. Source
// text is never valid base64 of a descriptor: it holds spaces, quotes,
// semicolons or braces.
func serializedDescriptor(text string) *descriptorpb.FileDescriptorProto {
	t := strings.TrimSpace(text)
	if t == "" || strings.ContainsAny(t, " \t\r\n;{}\"'") {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(t)
	if err != nil {
		return nil
	}
	var fdp descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(raw, &fdp); err != nil {
		return nil
	}
	return &fdp
}

// CompileProtobuf compiles the Protobuf schema main of srcs (file name
// to schema text, .proto source or a serialized descriptor as above);
// the other entries are the files it may import, by import path, and
// google/protobuf/*.proto are built in. Nothing is read from the file
// system.
func CompileProtobuf(srcs map[string]string, main string) (protoreflect.FileDescriptor, error) {
	src := protocompile.SourceAccessorFromMap(srcs)
	base := &protocompile.SourceResolver{Accessor: src}
	r := protocompile.ResolverFunc(func(path string) (protocompile.SearchResult, error) {
		if text, ok := srcs[path]; ok {
			if fdp := serializedDescriptor(text); fdp != nil {
				fdp.Name = proto.String(path)
				return protocompile.SearchResult{Proto: fdp}, nil
			}
		}
		return base.FindFileByPath(path)
	})
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(r), MaxParallelism: 1}
	files, err := c.Compile(context.Background(), main)
	if err != nil {
		return nil, err
	}
	return files[0], nil
}
