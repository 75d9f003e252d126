package logstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// The remote folders of deleted topics.
//
// Deleting a remote-enabled topic records its remote folder (TOPIC-REMOTEID)
// in remote-deleted.json before the topic goes, and the remote tier forgets
// it once the folder is emptied. The tier's sweep of leftover folders at
// start removes only recorded ones: a folder of a topic this data
// directory never had (a new or emptied data directory on the same store,
// another server's topics) may hold the only copy of its data, and is
// kept.

const remoteDeletedFile = "remote-deleted.json"

// loadRemoteDeleted reads remote-deleted.json (absent: none).
func (l *Log) loadRemoteDeleted() error {
	l.remoteDeleted = map[string]bool{}
	b, err := readFile(l.fs, filepath.Join(l.dir, remoteDeletedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return ioError("read "+remoteDeletedFile, err)
	}
	var dirs []string
	if err := json.Unmarshal(b, &dirs); err != nil {
		return fmt.Errorf("data directory %s: %s: %w (it lists the remote folders of deleted topics; fix or remove it)", l.dir, remoteDeletedFile, err)
	}
	for _, d := range dirs {
		l.remoteDeleted[d] = true
	}
	return nil
}

// writeRemoteDeleted replaces remote-deleted.json (remoteDelMu held).
func (l *Log) writeRemoteDeleted() error {
	dirs := l.remoteDeletedLocked()
	b, err := json.Marshal(dirs)
	if err != nil {
		return err
	}
	return writeFileAtomic(l.fs, filepath.Join(l.dir, remoteDeletedFile), append(b, '\n'))
}

func (l *Log) remoteDeletedLocked() []string {
	dirs := make([]string, 0, len(l.remoteDeleted))
	for d := range l.remoteDeleted {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return dirs
}

// recordRemoteDeleted records, durably, that the remote folder dir belongs
// to a topic being deleted.
func (l *Log) recordRemoteDeleted(dir string) error {
	l.remoteDelMu.Lock()
	defer l.remoteDelMu.Unlock()
	if l.remoteDeleted[dir] {
		return nil
	}
	l.remoteDeleted[dir] = true
	if err := l.writeRemoteDeleted(); err != nil {
		delete(l.remoteDeleted, dir)
		return err
	}
	return nil
}

// RemoteDeletedTopics returns the remote folders (TOPIC-REMOTEID) of the
// topics deleted from this data directory whose remote objects may not
// all be removed yet: the remote tier removes them and then calls
// ForgetRemoteDeleted.
func (l *Log) RemoteDeletedTopics() []string {
	l.remoteDelMu.Lock()
	defer l.remoteDelMu.Unlock()
	return l.remoteDeletedLocked()
}

// ForgetRemoteDeleted drops dir from RemoteDeletedTopics once its objects
// are removed.
func (l *Log) ForgetRemoteDeleted(dir string) error {
	l.remoteDelMu.Lock()
	defer l.remoteDelMu.Unlock()
	if !l.remoteDeleted[dir] {
		return nil
	}
	delete(l.remoteDeleted, dir)
	if err := l.writeRemoteDeleted(); err != nil {
		l.remoteDeleted[dir] = true
		return err
	}
	return nil
}
