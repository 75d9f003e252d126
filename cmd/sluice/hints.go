package main

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"github.com/sluicehq/sluice/logstore"
)

// hint returns a sentence saying what to do about err, for the mistakes a
// new user makes most (a port taken, a data directory a server holds, a
// relative path from the wrong directory, a topic that does not exist),
// or "" when there is nothing to add to the error itself.
func hint(err error) string {
	var locked *logstore.LockedError
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return "Another process listens on that address (a sluice serve or sluice run already running?): stop it, or choose another address with --kafka-addr, --listener or --http-addr."
	case errors.As(err, &locked):
		return "A running sluice serve (or sluice run) owns that data directory: stop it, or go through it with --broker HOST:PORT (topic, produce, consume, user, acl) or --server URL (tenant, namespace, token), or use another --data-dir."
	case errors.Is(err, logstore.ErrUnknownTopic):
		return "'sluice topic list' shows the topics of the data directory (or of --broker); 'sluice topic create NAME' creates one. Is --data-dir (default ./data) or --broker the one you meant?"
	case errors.Is(err, fs.ErrNotExist):
		wd, werr := os.Getwd()
		if werr != nil {
			return ""
		}
		return "Relative paths, on the command line and in a pipeline spec, are taken from the current directory " + wd + " (the examples run from the repository root)."
	}
	return ""
}
