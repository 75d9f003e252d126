// Package objstoretest helps test code written against objstore: an
// S3-compatible server in the test process (github.com/johannesboyne/gofakes3
// over real HTTP, so the S3 client, its signing and its error handling are
// exercised), and a conformance suite that every objstore.Store must pass.
package objstoretest
