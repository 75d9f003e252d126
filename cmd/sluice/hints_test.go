package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/logstore"
)

// TestCommonMistakesSayWhatToDo: the errors of a new user's usual
// mistakes end with a sentence saying what to do, after the error itself.
func TestCommonMistakesSayWhatToDo(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	locked := t.TempDir()
	l, err := logstore.Open(logstore.Options{Dir: locked})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tc := range []struct {
		name string
		args []string
		err  string // part of the error
		hint string // part of the hint
	}{
		{"port in use", []string{"serve", "--data-dir", t.TempDir(), "--kafka-addr", taken.Addr().String(), "--http-addr", "127.0.0.1:0", "--log-level", "error"},
			"address already in use", "Another process listens on that address"},
		{"data directory of a running server", []string{"topic", "list", "--data-dir", locked},
			"is locked by another process", "--broker HOST:PORT"},
		{"unknown topic", []string{"consume", "nosuch", "-e", "--data-dir", t.TempDir()},
			"unknown topic", "'sluice topic list' shows the topics"},
		{"missing spec", []string{"run", "no-such-spec.yaml"},
			"no such file or directory", "Relative paths, on the command line and in a pipeline spec, are taken from the current directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := runCLI(t, nil, "", tc.args...)
			if code != 1 || !strings.Contains(errs, tc.err) || !strings.Contains(errs, tc.hint) {
				t.Fatalf("status %d, stderr:\n%s\nwant status 1, %q and the hint %q", code, errs, tc.err, tc.hint)
			}
			if strings.Index(errs, tc.hint) < strings.Index(errs, tc.err) {
				t.Errorf("the hint comes before the error:\n%s", errs)
			}
		})
	}
}

// TestReadingCommandsCreateNoDataDirectory: a command that reads or
// changes a data directory fails on one that does not exist, saying so,
// and leaves none behind (a mistyped --data-dir once got an empty data
// directory and "unknown topic"); the commands that add something
// create it.
func TestReadingCommandsCreateNoDataDirectory(t *testing.T) {
	for _, args := range [][]string{
		{"consume", "orders", "-e"},
		{"topic", "list"},
		{"topic", "describe", "orders"},
		{"topic", "delete", "orders"},
		{"user", "list"},
		{"acl", "list"},
		{"produce", "orders"},
	} {
		dir := filepath.Join(t.TempDir(), "mistyped")
		code, _, errs := runCLI(t, nil, "", append(args, "--data-dir", dir)...)
		if code != 1 || !strings.Contains(errs, "data directory "+dir+" does not exist") {
			t.Errorf("%v: status %d, stderr %s", args, code, errs)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%v created the data directory %s (%v)", args, dir, err)
		}
	}
	dir := filepath.Join(t.TempDir(), "new")
	if code, _, errs := runCLI(t, nil, "", "topic", "create", "orders", "--data-dir", dir); code != 0 {
		t.Fatalf("topic create in a new data directory: status %d, %s", code, errs)
	}
	if code, out, errs := runCLI(t, nil, "", "topic", "list", "--data-dir", dir); code != 0 || !strings.Contains(out, "orders") {
		t.Fatalf("topic list: status %d, %s%s", code, out, errs)
	}
}
