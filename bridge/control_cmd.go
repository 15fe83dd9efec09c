package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// Limits on one control command.
const (
	// MaxCommandBytes is the largest control record accepted, 1 MiB.
	MaxCommandBytes = 1 << 20
	// MaxCommandIDs is the most entries one command may carry in gids, rids,
	// uids and events together: a bound on the work and on the size of the
	// listen quest one command can cause. Larger changes are split into
	// several commands.
	MaxCommandIDs = 10000
	// MaxCommandIDLen is the longest command id, in characters.
	MaxCommandIDLen = 128
	// MaxEventNameLen is the longest event name, in characters.
	MaxEventNameLen = 64
)

// Command is one parsed control-topic command:
//
//	{"id": "c-1", "op": "add", "gids": [1, 2], "uids": [7], "events": ["login"]}
//	{"id": "c-2", "op": "set_all", "p2p": true, "ev": false}
//
// Ops: "add" and "remove" change the id lists and need at least one
// non-empty list; "set" replaces all four lists, an absent list meaning an
// empty one ("exactly this"); "set_all" sets the four flags p2p, group,
// room, ev, and a flag it does not mention keeps its current value. Lists
// and flags do not mix: set_all takes only flags, the other ops only lists.
// Ids are positive int64, event names non-empty strings of at most 64
// characters.
type Command struct {
	ID                   string
	Op                   rtm.ListenOp
	GIDs, RIDs, UIDs     []int64
	Events               []string
	P2P, Group, Room, Ev *bool // set_all only; nil keeps the current value
}

// Change returns the listen change the command makes to a connection whose
// state is cur (cur supplies the flags set_all leaves alone).
func (c *Command) Change(cur rtm.ListenState) rtm.ListenChange {
	ch := rtm.ListenChange{Op: c.Op, GIDs: c.GIDs, RIDs: c.RIDs, UIDs: c.UIDs, Events: c.Events}
	if c.Op == rtm.OpSetAll {
		ch.P2P, ch.Group, ch.Room, ch.Ev = cur.P2P, cur.Group, cur.Room, cur.Ev
		pick(&ch.P2P, c.P2P)
		pick(&ch.Group, c.Group)
		pick(&ch.Room, c.Room)
		pick(&ch.Ev, c.Ev)
	}
	return ch
}

func pick(dst *bool, v *bool) {
	if v != nil {
		*dst = *v
	}
}

// ParseCommand parses and validates one control command. Parsing is strict:
// the record must be exactly one JSON object; unknown or repeated fields,
// values of the wrong type, ids that are not positive integers within int64,
// and more than MaxCommandIDs entries are errors that name the field. When
// the id could be read, the returned Command carries it even on error, so
// the rejection can be reported under it.
func ParseCommand(data []byte) (Command, error) {
	var c Command
	if len(data) > MaxCommandBytes {
		return c, fmt.Errorf("bridge: command: %d bytes, more than %d", len(data), MaxCommandBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return c, errors.New("bridge: command: not a JSON object")
	}
	seen := make(map[string]bool, 10)
	var (
		op       string
		hasID    bool
		hasOp    bool
		lists    []string // list fields present
		flags    []string // flag fields present
		count    int
		fieldErr error
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return c, fmt.Errorf("bridge: command: not valid JSON: %w", err)
		}
		key := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return c, fmt.Errorf("bridge: command: not valid JSON: %w", err)
		}
		if seen[key] {
			return c, fmt.Errorf("bridge: command: field %q appears twice", key)
		}
		seen[key] = true
		if fieldErr != nil && key != "id" {
			continue // keep reading: the id may come later
		}
		switch key {
		case "id":
			c.ID, err = parseString(raw)
			hasID = err == nil
			if err == nil {
				err = checkID(c.ID)
			}
			if err != nil {
				c.ID, hasID = "", false
				if fieldErr != nil {
					continue
				}
			}
		case "op":
			op, err = parseString(raw)
			hasOp = true
		case "gids":
			c.GIDs, err = parseIDs(raw)
			lists, count = append(lists, key), count+len(c.GIDs)
		case "rids":
			c.RIDs, err = parseIDs(raw)
			lists, count = append(lists, key), count+len(c.RIDs)
		case "uids":
			c.UIDs, err = parseIDs(raw)
			lists, count = append(lists, key), count+len(c.UIDs)
		case "events":
			c.Events, err = parseEvents(raw)
			lists, count = append(lists, key), count+len(c.Events)
		case "p2p":
			c.P2P, err = parseBool(raw)
			flags = append(flags, key)
		case "group":
			c.Group, err = parseBool(raw)
			flags = append(flags, key)
		case "room":
			c.Room, err = parseBool(raw)
			flags = append(flags, key)
		case "ev":
			c.Ev, err = parseBool(raw)
			flags = append(flags, key)
		default:
			err = errors.New("unknown field")
		}
		if err != nil {
			fieldErr = fmt.Errorf("bridge: command: field %q: %w", key, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return c, fmt.Errorf("bridge: command: not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return c, errors.New("bridge: command: data after the JSON object")
	}
	if fieldErr != nil {
		return c, fieldErr
	}
	switch {
	case !hasID:
		return c, errors.New(`bridge: command: field "id" is required`)
	case !hasOp:
		return c, errors.New(`bridge: command: field "op" is required`)
	}
	switch op {
	case "add":
		c.Op = rtm.OpAdd
	case "remove":
		c.Op = rtm.OpRemove
	case "set":
		c.Op = rtm.OpSet
	case "set_all":
		c.Op = rtm.OpSetAll
	default:
		return c, fmt.Errorf(`bridge: command: field "op": unknown op %q: want add, remove, set or set_all`, op)
	}
	if count > MaxCommandIDs {
		return c, fmt.Errorf("bridge: command: %d ids and events, more than %d: split it", count, MaxCommandIDs)
	}
	if c.Op == rtm.OpSetAll {
		if len(lists) > 0 {
			return c, fmt.Errorf("bridge: command: op set_all takes only the flags p2p, group, room and ev, not %q", lists[0])
		}
		if len(flags) == 0 {
			return c, errors.New("bridge: command: op set_all needs at least one of p2p, group, room, ev")
		}
		return c, nil
	}
	if len(flags) > 0 {
		return c, fmt.Errorf("bridge: command: op %s takes only the lists gids, rids, uids and events, not %q", op, flags[0])
	}
	if (c.Op == rtm.OpAdd || c.Op == rtm.OpRemove) && count == 0 {
		return c, fmt.Errorf("bridge: command: op %s needs at least one non-empty list of gids, rids, uids or events", op)
	}
	return c, nil
}

// checkID checks a command id's length.
func checkID(id string) error {
	switch n := utf8.RuneCountInString(id); {
	case n == 0:
		return errors.New("empty")
	case n > MaxCommandIDLen:
		return fmt.Errorf("%d characters, more than %d", n, MaxCommandIDLen)
	}
	return nil
}

// jsonKind names the JSON type of a raw value, for error messages.
func jsonKind(raw []byte) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func parseString(raw json.RawMessage) (string, error) {
	if raw[0] != '"' {
		return "", fmt.Errorf("want a string, got %s", jsonKind(raw))
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

func parseBool(raw json.RawMessage) (*bool, error) {
	switch string(raw) {
	case "true":
		v := true
		return &v, nil
	case "false":
		v := false
		return &v, nil
	}
	return nil, fmt.Errorf("want true or false, got %s", jsonKind(raw))
}

// parseIDs parses an array of positive int64 ids.
func parseIDs(raw json.RawMessage) ([]int64, error) {
	if raw[0] != '[' {
		return nil, fmt.Errorf("want an array of ids, got %s", jsonKind(raw))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, err
	}
	if len(elems) > MaxCommandIDs {
		return nil, fmt.Errorf("%d ids, more than %d: split it", len(elems), MaxCommandIDs)
	}
	ids := make([]int64, 0, len(elems))
	for i, e := range elems {
		if k := jsonKind(e); k != "a number" {
			return nil, fmt.Errorf("element %d: want a positive integer, got %s", i, k)
		}
		s := string(e)
		switch {
		case strings.HasPrefix(s, "-"):
			return nil, fmt.Errorf("element %d: %s is not a positive id", i, s)
		case strings.ContainsAny(s, ".eE"):
			return nil, fmt.Errorf("element %d: %s is not an integer", i, s)
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("element %d: %s is larger than 2^63-1", i, s)
		}
		if v == 0 {
			return nil, fmt.Errorf("element %d: 0 is not a positive id", i)
		}
		ids = append(ids, v)
	}
	return ids, nil
}

// parseEvents parses an array of event names.
func parseEvents(raw json.RawMessage) ([]string, error) {
	if raw[0] != '[' {
		return nil, fmt.Errorf("want an array of event names, got %s", jsonKind(raw))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, err
	}
	if len(elems) > MaxCommandIDs {
		return nil, fmt.Errorf("%d events, more than %d: split it", len(elems), MaxCommandIDs)
	}
	evs := make([]string, 0, len(elems))
	for i, e := range elems {
		if e[0] != '"' {
			return nil, fmt.Errorf("element %d: want a string, got %s", i, jsonKind(e))
		}
		var s string
		if err := json.Unmarshal(e, &s); err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		switch n := utf8.RuneCountInString(s); {
		case n == 0:
			return nil, fmt.Errorf("element %d: empty event name", i)
		case n > MaxEventNameLen:
			return nil, fmt.Errorf("element %d: %d characters, more than %d", i, n, MaxEventNameLen)
		}
		evs = append(evs, s)
	}
	return evs, nil
}
