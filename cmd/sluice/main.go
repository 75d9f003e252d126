package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// cli carries a command's standard streams and environment, so that tests
// can run commands in-process.
type cli struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// command is one node of the command tree: a leaf has run, a group has sub.
type command struct {
	name    string
	summary string
	usage   string // text after "Usage: sluice <path>"
	run     func(ctx context.Context, c *cli, args []string) error
	sub     []*command
}

// usageError is an error in how the command was called; it exits with 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func commands() *command {
	return &command{
		name:    "sluice",
		summary: "a real-time data pipeline engine: durable Kafka-compatible log, stream processing, connectors",
		sub: []*command{
			serveCommand(),
			{name: "run", summary: "run a YAML pipeline (sources, steps, sinks) on the embedded defaults", run: runPipeline},
			{name: "validate", summary: "check a YAML pipeline without running it", run: validatePipeline},
			topicCommand(),
			userCommand(),
			tenantCommand(),
			namespaceCommand(),
			tokenCommand(),
			aclCommand(),
			produceCommand(),
			consumeCommand(),
			benchCommand(),
			nexmarkCommand(),
			sqlCommand(),
			{name: "version", summary: "print the version", run: func(_ context.Context, c *cli, args []string) error {
				if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
					fmt.Fprintln(c.stdout, "Usage: sluice version\n\nPrints the version of this binary.")
					printExamples(c.stdout, "sluice version")
					return nil
				}
				fmt.Fprintln(c.stdout, "sluice", version)
				return nil
			}},
		},
	}
}

func main() {
	ctx, stop := signalContext()
	code := run(ctx, &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit status.
func run(ctx context.Context, c *cli, args []string) int {
	root := commands()
	cmd, path, rest := root, []string{"sluice"}, args
	for len(cmd.sub) > 0 {
		if len(rest) == 0 || rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help" {
			if len(rest) == 0 {
				printGroupUsage(c.stderr, cmd, path)
				return 2
			}
			printGroupUsage(c.stdout, cmd, path)
			return 0
		}
		next := findSub(cmd, rest[0])
		if next == nil {
			fmt.Fprintf(c.stderr, "%s: unknown command %q\n\n", strings.Join(path, " "), rest[0])
			printGroupUsage(c.stderr, cmd, path)
			return 2
		}
		cmd, path, rest = next, append(path, next.name), rest[1:]
	}
	err := cmd.run(ctx, c, rest)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errOutputClosed):
		return 141
	case errors.Is(err, errInterrupted):
		return interruptStatus(ctx)
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "%s: %s\nRun '%s --help' for usage.\n", strings.Join(path, " "), ue.msg, strings.Join(path, " "))
		return 2
	default:
		fmt.Fprintf(c.stderr, "%s: %v\n", strings.Join(path, " "), err)
		if h := hint(err); h != "" {
			fmt.Fprintln(c.stderr, h)
		}
		return 1
	}
}

func findSub(cmd *command, name string) *command {
	for _, s := range cmd.sub {
		if s.name == name {
			return s
		}
	}
	return nil
}

func printGroupUsage(w io.Writer, cmd *command, path []string) {
	fmt.Fprintf(w, "%s: %s\n\nUsage: %s <command> [flags] [args]\n\nCommands:\n", strings.Join(path, " "), cmd.summary, strings.Join(path, " "))
	subs := append([]*command(nil), cmd.sub...)
	sort.Slice(subs, func(i, j int) bool { return subs[i].name < subs[j].name })
	for _, s := range subs {
		fmt.Fprintf(w, "  %-10s %s\n", s.name, s.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's flags.\n", strings.Join(path, " "))
}

// flagSet returns a FlagSet whose --help prints the command's usage on stdout
// and whose errors are usage errors.
func flagSet(c *cli, path, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	out := &usageOut{dst: c.stdout}
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: %s %s\n", path, usage)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(out, "\nFlags:\n")
			fs.PrintDefaults()
		}
		printExamples(out, path)
	}
	return fs
}

// parseError turns an error of fs.Parse into the command's error: on
// --help it prints the usage fs held back (see usageOut) and returns
// flag.ErrHelp; any other error becomes a usage error.
func parseError(fs *flag.FlagSet, err error) error {
	help := errors.Is(err, flag.ErrHelp)
	if o, ok := fs.Output().(*usageOut); ok {
		if help {
			_, _ = o.dst.Write(o.Bytes())
		}
		o.Reset()
	}
	if help {
		return err
	}
	return &usageError{err.Error()}
}

// usageOut holds what a FlagSet prints while parsing: the flag package
// prints the usage on --help and on every bad flag alike, but only --help
// should show it (on stdout); a bad flag is reported as a usage error on
// stderr instead. parseArgs writes or drops it.
type usageOut struct {
	bytes.Buffer
	dst io.Writer
}

// parseArgs parses flags that may appear before, between or after positional
// arguments (`topic create NAME --partitions 3`) and returns the positionals.
// "--" ends flag parsing.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, parseError(fs, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// envOr returns the environment variable name if set, else def.
func envOr(c *cli, name, def string) string {
	if v := c.getenv(name); v != "" {
		return v
	}
	return def
}
