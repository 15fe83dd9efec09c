package main

import (
	"context"
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
	cl := newCLI(cliSpec{
		Name: "version", Usage: "rtm2kafka version",
		Short: "Prints the version of this build (set at link time, else the module version or VCS revision).",
	})
	if err := cl.Parse(args, c.Stdout); err != nil {
		return err
	}
	if len(cl.Args()) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, cl.Args()[0])
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
