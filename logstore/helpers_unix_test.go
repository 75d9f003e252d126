package logstore

import (
	"os"
	"syscall"
)

type fsFileMode = os.FileMode

var errENOSPC = &os.PathError{Op: "write", Path: "faultfs", Err: syscall.ENOSPC}
