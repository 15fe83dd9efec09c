package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// CtlCommand publishes one listen-control command to the control topic,
// waits for the bridge's result and prints it; `ctl show` prints the listen
// state the active bridge last reported.
type CtlCommand struct {
	Stdout, Stderr io.Writer
	Env            map[string]string
}

// gatewayEvents are the event names the RTM gateway pushes (spec: pushevent);
// others are refused unless --allow-unknown-events.
var gatewayEvents = map[string]bool{"login": true, "logout": true}

// ctlOps are the OPs that send a command (show only reads).
var ctlOps = map[string]bool{"add": true, "remove": true, "set": true, "set_all": true}

var ctlSpec = cliSpec{
	Name:  "ctl",
	Usage: "rtm2kafka ctl [flags] OP",
	Short: `Changes what a running bridge listens to, through the control topic
(<prefix>.control), then waits for the result on <prefix>.control.results
and prints it: ok, the error if any, and the whole listen state after it.`,
	Extra: `OP is one of:
  add      listen to more ids:     rtm2kafka ctl --gids 1,2 add
  remove   stop listening to ids:  rtm2kafka ctl --uids 7 remove
  set      exactly these id lists (absent lists become empty)
  set_all  the set-all flags; flags not given keep their value:
           rtm2kafka ctl --p2p=false set_all
  show     print the listen state the active bridge last reported (read only)

Flags may also follow OP (rtm2kafka ctl add --gids 1,2); after "--" nothing
is a flag.

Without a result within --timeout the command stays queued in the control
topic and is applied when a bridge reads it: ctl says where and exits 3.
Exit codes: 0 applied (or shown), 1 rejected or failed, 2 usage error, 3 queued.`,
}

// Run parses the command line, sends the command and prints the result. It
// fails (exit 1) when the bridge rejected the command, and returns an
// errQueued (exit 3) when no result came in time.
func (c *CtlCommand) Run(ctx context.Context, args []string) error {
	cfg := &KafkaConfig{}
	cl := newCLI(ctlSpec, cfg)
	id := cl.String("id", "", "command id (default: generated)")
	gids := cl.List("gids", "comma-separated group ids")
	rids := cl.List("rids", "comma-separated room ids")
	uids := cl.List("uids", "comma-separated user ids")
	events := cl.List("events", "comma-separated event names: login, logout")
	allowEvents := cl.Bool("allow-unknown-events", false, "send event names the gateway is not known to push (a newer gateway)")
	p2p := cl.Bool("p2p", false, "set_all: listen to all p2p messages")
	group := cl.Bool("group", false, "set_all: listen to all group messages")
	room := cl.Bool("room", false, "set_all: listen to all room messages")
	ev := cl.Bool("ev", false, "set_all: listen to all events")
	raw := cl.String("json", "", "send this JSON command as is instead of building one from OP and flags")
	timeout := cl.Duration("timeout", 30*time.Second, "how long to wait for the bridge's result")
	if err := cl.Parse(args, c.Stdout); err != nil {
		return err
	}
	if err := cl.Load(c.Env); err != nil {
		return err
	}
	cmd := map[string]any{}
	switch {
	case *raw != "":
		if err := json.Unmarshal([]byte(*raw), &cmd); err != nil {
			return fmt.Errorf("%w: --json: not a JSON object: %v", errUsage, err)
		}
		if len(cl.Args()) > 0 {
			return fmt.Errorf("%w: give either --json or OP, not both", errUsage)
		}
	case len(cl.Args()) != 1:
		return fmt.Errorf("%w: want exactly one OP (add, remove, set, set_all or show)", errUsage)
	case cl.Args()[0] == "show":
		return c.show(ctx, cfg, *timeout)
	case !ctlOps[cl.Args()[0]]:
		return fmt.Errorf("%w: unknown OP %q: want add, remove, set, set_all or show", errUsage, cl.Args()[0])
	default:
		op := cl.Args()[0]
		cmd["op"] = op
		for name, v := range map[string]*string{"gids": gids, "rids": rids, "uids": uids} {
			if cl.Set(name) || op == "set" {
				ids, err := parseIDs(*v)
				if err != nil {
					return fmt.Errorf("%w: --%s: %v", errUsage, name, err)
				}
				cmd[name] = ids
			}
		}
		if cl.Set("events") || op == "set" {
			cmd["events"] = splitList(*events)
		}
		for name, v := range map[string]*bool{"p2p": p2p, "group": group, "room": room, "ev": ev} {
			if cl.Set(name) {
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
	parsed, err := bridge.ParseCommand(body)
	if err != nil {
		return fmt.Errorf("invalid command: %s", strings.TrimPrefix(err.Error(), "bridge: command: "))
	}
	if !*allowEvents {
		for _, e := range parsed.Events {
			if !gatewayEvents[e] {
				return fmt.Errorf("%w: event %q: the gateway pushes only login and logout; --allow-unknown-events sends it anyway", errUsage, e)
			}
		}
	}
	opts, router, err := cfg.ctlSetup()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := bridge.SendControl(ctx, opts, router, body)
	var q *bridge.QueuedError
	if errors.As(err, &q) {
		return fmt.Errorf("%w: command %s queued at %s offset %d; no bridge applied it within %s: it will be applied when a bridge reads it",
			errQueued, q.ID, q.Topic, q.Offset, timeout.String())
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("%w (no bridge has run with this KAFKA_TOPIC_PREFIX yet)", err)
	}
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

// shown is what `ctl show` prints.
type shown struct {
	Listen    any     `json:"listen"`     // null when no result exists
	AsOf      *string `json:"as_of"`      // when the bridge applied the command, RFC 3339; null without a result
	CommandID string  `json:"command_id"` // the command of that result
	OK        bool    `json:"ok"`         // whether the gateway accepted that command (the state is the whole state either way)
	Offset    int64   `json:"control_offset"`
	Source    string  `json:"source"`
}

// show prints the listen state as the active bridge last reported it.
func (c *CtlCommand) show(ctx context.Context, cfg *KafkaConfig, timeout time.Duration) error {
	opts, router, err := cfg.ctlSetup()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := bridge.ShowListen(ctx, opts, router)
	if err != nil {
		return err
	}
	out := shown{Offset: -1, Source: "no result on " + router.ControlResultsTopic() + ": no control command was ever applied; a bridge listens to its RTM_LISTEN_ALL defaults (see its /status)"}
	if s != nil {
		at := s.At.UTC().Format(time.RFC3339Nano)
		out = shown{Listen: s.Result.Listen, AsOf: &at, CommandID: s.Result.ID, OK: s.Result.OK,
			Offset: s.Result.Offset, Source: fmt.Sprintf("%s partition %d offset %d", s.Topic, s.Partition, s.Offset)}
	}
	b, _ := json.MarshalIndent(out, "", "  ") // plain values always marshal
	fmt.Fprintln(c.Stdout, string(b))
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

// ctlSetup returns the connection options and topic router ctl needs.
func (k *KafkaConfig) ctlSetup() ([]kgo.Opt, *topics.Router, error) {
	opts, err := k.connOpts()
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	router, err := k.router(topics.KeyTo)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	return opts, router, nil
}
