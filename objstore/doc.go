// Package objstore is Sluice's view of object storage: a flat namespace of
// immutable objects that are put whole, read whole or by byte range,
// listed by prefix and deleted. Tiered storage of the log (package tier)
// and checkpoints on object storage (package checkpoint) are written
// against the small Store interface, so that any S3-compatible service
// (AWS S3, MinIO, SeaweedFS, Ceph, Cloudflare R2), an in-memory store for
// tests, and fault-injecting wrappers are interchangeable.
//
// Open turns a location such as s3://bucket/prefix into a Store. The S3
// client is github.com/minio/minio-go/v7: it speaks the S3 protocol of
// every store named above with one small dependency tree and path-style
// addressing for custom endpoints, where the AWS SDK v2 pulls in a module
// per service and needs endpoint resolvers for non-AWS stores.
//
// Guarantees asked of every Store, and checked by the conformance suite
// in objstoretest against each implementation:
//   - Put is atomic: a reader sees the whole new object or the previous
//     state, never a prefix (S3 gives this for single PUTs and completed
//     multipart uploads).
//   - After Put returns nil, Get, Stat and List see the object
//     (read-after-write consistency, which S3 has given since 2020).
//   - Get and Stat of an absent object return an error that matches
//     ErrNotExist with errors.Is; Delete of an absent object succeeds.
package objstore
