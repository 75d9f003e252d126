package secfile

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSecret bounds what FirstLine reads: a password or token file is
// small, and stdin may be a terminal or a pipe that never ends.
const maxSecret = 64 << 10

// ErrEmpty is returned by FirstLine when the first line is empty.
var ErrEmpty = errors.New("the first line is empty")

// CertPool reads a PEM file of CA certificates into a pool; a file with
// no certificate in it is an error, so a wrong path (a key, an empty
// file) is caught when the command starts rather than at the first
// handshake.
func CertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// FirstLine returns the first line of r without its line ending ("\n" or
// "\r\n"); spaces are kept, as they may be part of a password. An empty
// first line is ErrEmpty.
func FirstLine(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSecret))
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", ErrEmpty
	}
	return line, nil
}

// FirstLineOf is FirstLine of a file; errors name the file.
func FirstLineOf(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := FirstLine(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	return line, nil
}
