// Command rtm2kafka moves everything a LiveData RTM project says into Apache
// Kafka: it holds one listening connection to the RTM gateway, publishes each
// push to a topic per kind and answers the gateway only after Kafka has
// acknowledged the record.
//
// Subcommands: run (the bridge, the default), sim (a local gateway
// simulator), ctl (send a listen-control command), tail (print records),
// version. Run "rtm2kafka <command> --help" for each.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set with -ldflags "-X main.version=…"; buildVersion falls back to
// the module's build info.
var version = ""

// command is one subcommand.
type command interface {
	// Run parses args and runs until ctx is done or the work ends.
	Run(ctx context.Context, args []string) error
}

// errUsage marks an error caused by a bad command line; main prints a hint.
var errUsage = errors.New("usage error")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(runMain(ctx, os.Args[1:], os.Stdout, os.Stderr, environ()))
}

// runMain dispatches to a subcommand and maps its error to an exit code.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer, env map[string]string) int {
	name := "run"
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fmt.Fprint(stdout, mainUsage)
		return 0
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	var cmd command
	switch name {
	case "run":
		cmd = &RunCommand{Stdout: stdout, Stderr: stderr, Env: env}
	case "sim":
		cmd = &SimCommand{Stdout: stdout, Stderr: stderr, Env: env}
	case "ctl":
		cmd = &CtlCommand{Stdout: stdout, Stderr: stderr, Env: env}
	case "tail":
		cmd = &TailCommand{Stdout: stdout, Stderr: stderr, Env: env}
	case "version":
		cmd = &VersionCommand{Stdout: stdout}
	case "help":
		fmt.Fprint(stdout, mainUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "rtm2kafka: unknown command %q\n\n%s", name, mainUsage)
		return 2
	}
	err := cmd.Run(ctx, args)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "rtm2kafka %s: %v\nRun 'rtm2kafka %s --help' for usage.\n", name, err, name)
		return 2
	default:
		fmt.Fprintf(stderr, "rtm2kafka %s: %v\n", name, err)
		return 1
	}
}

const mainUsage = `rtm2kafka moves every push of a LiveData RTM project into Apache Kafka.

Usage:
  rtm2kafka [run] [flags]   run the bridge (the default command)
  rtm2kafka sim [flags]     run a local RTM gateway simulator
  rtm2kafka ctl [flags] OP  change what the bridge listens to (add, remove, set, set_all)
  rtm2kafka tail [flags]    print the records in the rtm topics as they arrive
  rtm2kafka version         print the version

Every setting is an environment variable; each also has a flag of the same
name in lower case with dashes (RTM_ENDPOINT -> --rtm-endpoint) that overrides
it. Run 'rtm2kafka <command> --help' for the variables of each command.
`

func environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
