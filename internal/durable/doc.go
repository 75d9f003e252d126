// Package durable holds the file-system steps that make a file's name,
// not only its bytes, survive a power loss: fsyncing the directory that
// holds it after it was created or renamed, and creating directories so
// that they survive too. A connector that publishes files by "write a
// temporary file, fsync it, rename it, fsync the directory" uses it for
// the last step (and for the staged name, before a checkpoint refers to
// it).
//
// CrashDir is its test seam: it records which entries of a directory an
// fsync made durable and can drop the others, as a power loss would.
package durable
