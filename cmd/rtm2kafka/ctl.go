package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// CtlCommand publishes one listen-control command to the control topic,
// waits for the bridge's result and prints it.
type CtlCommand struct {
	Stdout, Stderr io.Writer
	Env            map[string]string
}

// Run parses the command line, sends the command and prints the result. It
// fails (exit 1) when the bridge rejected the command.
func (c *CtlCommand) Run(ctx context.Context, args []string) error {
	cfg := &KafkaConfig{}
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	vals := bindFlags(fs, cfg)
	id := fs.String("id", "", "command id (default: generated)")
	gids := fs.String("gids", "", "comma-separated group ids")
	rids := fs.String("rids", "", "comma-separated room ids")
	uids := fs.String("uids", "", "comma-separated user ids")
	events := fs.String("events", "", "comma-separated event names (login, logout, …)")
	p2p := fs.Bool("p2p", false, "set_all: listen to all p2p messages")
	group := fs.Bool("group", false, "set_all: listen to all group messages")
	room := fs.Bool("room", false, "set_all: listen to all room messages")
	ev := fs.Bool("ev", false, "set_all: listen to all events")
	raw := fs.String("json", "", "send this JSON command as is instead of building one from OP and flags")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the bridge's result")
	fs.Usage = func() {
		fmt.Fprintf(c.Stderr, `Usage: rtm2kafka ctl [flags] OP

Changes what a running bridge listens to, through the control topic
(<prefix>.control), then waits for the result on <prefix>.control.results
and prints it: ok, the error if any, and the whole listen state after it.

OP is one of:
  add      listen to more ids:     rtm2kafka ctl --gids 1,2 add
  remove   stop listening to ids:  rtm2kafka ctl --uids 7 remove
  set      exactly these id lists (absent lists become empty)
  set_all  the set-all flags; flags not given keep their value:
           rtm2kafka ctl --p2p=false set_all

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := loadConfig(cfg, c.Env, vals); err != nil {
		return err
	}
	cmd := map[string]any{}
	if *raw != "" {
		if err := json.Unmarshal([]byte(*raw), &cmd); err != nil {
			return fmt.Errorf("%w: --json: %v", errUsage, err)
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("%w: give either --json or OP, not both", errUsage)
		}
	} else {
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: want exactly one OP (add, remove, set or set_all)", errUsage)
		}
		cmd["op"] = fs.Arg(0)
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]*string{"gids": gids, "rids": rids, "uids": uids} {
			if set[name] || (fs.Arg(0) == "set") {
				ids, err := parseIDs(*v)
				if err != nil {
					return fmt.Errorf("%w: --%s: %v", errUsage, name, err)
				}
				if set[name] || fs.Arg(0) == "set" {
					cmd[name] = ids
				}
			}
		}
		if set["events"] || fs.Arg(0) == "set" {
			cmd["events"] = splitList(*events)
		}
		for name, v := range map[string]*bool{"p2p": p2p, "group": group, "room": room, "ev": ev} {
			if set[name] {
				cmd[name] = *v
			}
		}
	}
	if _, ok := cmd["id"]; !ok {
		cmd["id"] = *id
		if *id == "" {
			cmd["id"] = bridge.NewCommandID()
		}
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("encode command: %w", err)
	}
	opts, err := cfg.connOpts()
	if err != nil {
		return err
	}
	router, err := cfg.router(topics.KeyTo)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := bridge.SendControl(ctx, opts, router, body)
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(res, "", "  ") // Result always marshals
	fmt.Fprintln(c.Stdout, string(out))
	if !res.OK {
		return fmt.Errorf("command %s rejected: %s", res.ID, res.Error)
	}
	return nil
}

func splitList(s string) []string {
	out := []string{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseIDs(s string) ([]int64, error) {
	out := []int64{}
	for _, f := range splitList(s) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer id", f)
		}
		out = append(out, n)
	}
	return out, nil
}
