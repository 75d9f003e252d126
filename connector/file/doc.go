// Package file is Sluice's file connector.
//
// Source reads newline-separated records (JSON lines, CSV lines, raw
// lines) from one file or from every regular file of a directory in name
// order (names starting with "." or "_" are skipped), as
// connector.Messages whose Origin is the file's path and whose Offset is
// the line number (from 1). A bounded source reads to the end of its
// files and finishes; with Follow it keeps reading data appended to the
// last file and files added to the directory later (with names sorting
// after the ones already read). With Records, files are read as records
// framed otherwise (Avro object container files, framed by the caller):
// the Offset is the record's number in the file and a position is the
// number of records read, which resuming skips.
//
// Sink writes each message's value as one line into rolling part files in
// a directory (or, with a Container, into blocks of a container format). A part file is written under a hidden temporary name and
// appears under its final name only when it is committed, by an atomic
// rename after an fsync: readers of the directory never see a partial or
// uncommitted file. Parts are committed when they roll (size or age), at
// checkpoint barriers and when the sink closes; with TwoPhase (exactly-once
// delivery) the writer is a checkpoint.TwoPhaseCommitter instead: parts are
// staged at each barrier (PreCommit) and renamed into place once the
// checkpoint completes (Commit), also after a crash (Recover). A part
// whose write, flush or fsync failed (a full disk, an I/O error) is never
// committed or staged, not even by a retried fsync that succeeds: the
// writer fails with the error and removes it.
package file
