package logstore

import (
	"os"
	"syscall"
)

type fsFileMode = os.FileMode

var errENOSPC = &os.PathError{Op: "write", Path: "faultfs", Err: syscall.ENOSPC}

// errEIO is an injected I/O error.
var errEIO = &os.PathError{Op: "fsync", Path: "faultfs", Err: syscall.EIO}
