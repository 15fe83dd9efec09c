package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
)

// VersionCommand prints the version of this build.
type VersionCommand struct {
	Stdout io.Writer
}

// Run prints the version.
func (c *VersionCommand) Run(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(c.Stdout)
	fs.Usage = func() {
		fmt.Fprintln(c.Stdout, "Usage: rtm2kafka version\n\nPrints the version of this build (ldflags, else module version or VCS revision).")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintln(c.Stdout, "rtm2kafka", buildVersion())
	return nil
}

// buildVersion is the version set at link time, else the module version, else
// the VCS revision (with "-dirty"), else "dev". It feeds both the version
// command and the build-info metric.
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return rev + dirty
	}
	return "dev"
}
