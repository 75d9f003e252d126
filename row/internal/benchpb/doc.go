// Package benchpb is generated code (protoc-gen-go, see gen.go) for the
// order message of the protobuf benchmarks in package row: the official
// library's fastest decode loop, the baseline Sluice's decoder is
// measured against. Only tests use it.
package benchpb
