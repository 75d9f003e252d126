package kafka

import (
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// clusterIDFile holds the cluster id generated on a data directory's first
// start, so that Metadata and DescribeCluster report the same id across
// restarts.
const clusterIDFile = "kafka-cluster.id"

// loadClusterID returns the cluster id kept in dir, generating and durably
// storing one (22 characters of URL-safe base64 of 16 random bytes, the form
// of Kafka's cluster ids) when there is none yet.
func loadClusterID(dir string) (string, error) {
	path := filepath.Join(dir, clusterIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(b))
		if id == "" {
			return "", fmt.Errorf("cluster id file %s is empty", path)
		}
		return id, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("reading the cluster id: %w", err)
	}
	var raw [16]byte
	crand.Read(raw[:])
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := writeFileDurable(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("storing the cluster id: %w", err)
	}
	return id, nil
}

// writeFileDurable writes path atomically (temporary file, fsync, rename,
// directory fsync).
func writeFileDurable(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
