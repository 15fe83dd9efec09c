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

// errUsage marks an error caused by a bad command line: exit 2, with a
// one-line hint to --help.
var errUsage = errors.New("usage error")

// Exit codes. Documented in mainUsage.
const (
	exitOK     = 0 // done; also --help and --version
	exitFailed = 1 // the command failed (configuration, Kafka, a rejected control command)
	exitUsage  = 2 // bad command line: unknown command or flag, missing argument, a secret as a flag
	exitQueued = 3 // ctl: the command is in the control topic but no bridge answered in time
)

// errQueued marks a ctl command that was sent but not yet applied.
var errQueued = errors.New("queued")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(runMain(ctx, os.Args[1:], os.Stdout, os.Stderr, environ()))
}

// runMain dispatches to a subcommand and maps its error to an exit code.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer, env map[string]string) int {
	name := "run"
	if len(args) > 0 {
		switch args[0] {
		case "help":
			if len(args) > 1 { // "help ctl" is "ctl --help"
				return runMain(ctx, []string{args[1], "--help"}, stdout, stderr, env)
			}
			fmt.Fprint(stdout, mainUsage)
			return exitOK
		case "-h", "--help", "-help":
			fmt.Fprint(stdout, mainUsage)
			return exitOK
		case "--version", "-version", "-v":
			args = append([]string{"version"}, args[1:]...)
		}
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	var cmd command
	switch name {
	case "run":
		cmd = &RunCommand{Stdout: stdout, Stderr: stderr, Env: env}
	case "sim":
		// sim writes its help to Stderr: give it stdout when help is asked for.
		out := stderr
		if helpAsked(args) {
			out = stdout
		}
		cmd = &SimCommand{Stdout: stdout, Stderr: out, Env: env}
	case "ctl":
		cmd = &CtlCommand{Stdout: stdout, Stderr: stderr, Env: env}
	case "tail":
		cmd = &TailCommand{Stdout: stdout, Stderr: stderr, Env: env}
	case "version":
		cmd = &VersionCommand{Stdout: stdout}
	default:
		fmt.Fprintf(stderr, "rtm2kafka: unknown command %q\nRun 'rtm2kafka --help' for usage.\n", name)
		return exitUsage
	}
	if name != "version" && !helpAsked(args) {
		warnUnknownVars(name, env, stderr)
	}
	err := cmd.Run(ctx, args)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		msg := strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
		fmt.Fprintf(stderr, "rtm2kafka %s: %s\nRun 'rtm2kafka %s --help' for usage.\n", name, firstLine(msg), name)
		return exitUsage
	case errors.Is(err, errQueued):
		fmt.Fprintf(stderr, "rtm2kafka %s: %s\n", name, strings.TrimPrefix(err.Error(), errQueued.Error()+": "))
		return exitQueued
	default:
		fmt.Fprintf(stderr, "rtm2kafka %s: %s\n", name, contextOnce(name, err.Error()))
		return exitFailed
	}
}

// helpAsked reports whether args ask for help (before a "--").
func helpAsked(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help", "-help":
			return true
		}
	}
	return false
}

// warnUnknownVars warns about variables with our prefixes that no command
// knows. The daemons (run, sim) log it, so a JSON log stays JSON; ctl and
// tail print a line.
func warnUnknownVars(name string, env map[string]string, stderr io.Writer) {
	warns := unknownVars(env)
	if len(warns) == 0 {
		return
	}
	if name == "run" || name == "sim" {
		log := newLogger(stderr, LogConfig{Level: env["LOG_LEVEL"], Format: env["LOG_FORMAT"]})
		for _, w := range warns {
			log.Warn(w)
		}
		return
	}
	for _, w := range warns {
		fmt.Fprintf(stderr, "rtm2kafka %s: warning: %s\n", name, w)
	}
}

// contextOnce drops what the "rtm2kafka <name>: " prefix already says and
// any context repeated back to back ("bridge: bridge: x" → "bridge: x").
func contextOnce(name, msg string) string {
	msg = strings.TrimPrefix(msg, name+": ")
	parts := strings.Split(msg, ": ")
	out := parts[:0]
	for _, p := range parts {
		if len(out) > 0 && p == out[len(out)-1] {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

const mainUsage = `rtm2kafka moves every push of a LiveData RTM project into Apache Kafka.

Usage:
  rtm2kafka [command] [flags]

Commands:
  run       run the bridge (the default command)
  sim       run a local RTM gateway simulator
  ctl       change or show what the bridge listens to (add, remove, set, set_all, show)
  tail      print the records in the rtm topics as they arrive
  version   print the version

Flags:
  -h, --help      show this help
      --version   print the version

Every setting is an environment variable; each also has a flag of the same
name in lower case with dashes (RTM_ENDPOINT -> --rtm-endpoint) that overrides
it, except secrets, which come only from the environment or a *_FILE.
Run 'rtm2kafka <command> --help' for the variables of each command.

Exit codes:
  0  done (also --help and --version)
  1  failed: invalid configuration, Kafka unreachable, a command rejected
  2  usage error: unknown command or flag, a missing argument, a secret as a flag
  3  ctl: the command is queued in the control topic but no bridge applied it in time
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
