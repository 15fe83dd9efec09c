package rtmsim

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseMix reads a [Mix] from "name=weight" pairs separated by commas, as
// `rtm2kafka sim` takes it in SIM_MIX: scopes p2p, group, room, event and
// kinds chat, audio, cmd, file, message, e.g. "p2p=1,group=1" (only p2p and
// group messages, default kinds) or "chat=1" (default scopes, chat only).
// Names not given weigh 0, and when all scope (or all kind) weights are 0
// the defaults apply ([Mix]); weights are non-negative numbers. An empty
// string is the zero Mix.
func ParseMix(s string) (Mix, error) {
	var m Mix
	fields := map[string]*float64{
		"p2p": &m.P2P, "group": &m.Group, "room": &m.Room, "event": &m.Event,
		"chat": &m.Chat, "audio": &m.Audio, "cmd": &m.Cmd, "file": &m.File, "message": &m.Message,
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok {
			return Mix{}, fmt.Errorf("rtmsim: mix %q: want name=weight", part)
		}
		p := fields[name]
		if p == nil {
			return Mix{}, fmt.Errorf("rtmsim: mix: unknown name %q (p2p, group, room, event, chat, audio, cmd, file, message)", name)
		}
		if seen[name] {
			return Mix{}, fmt.Errorf("rtmsim: mix: %s given twice", name)
		}
		seen[name] = true
		w, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || w < 0 || w != w || w > 1e9 {
			return Mix{}, fmt.Errorf("rtmsim: mix: %s=%q: want a number from 0 to 1e9", name, val)
		}
		*p = w
	}
	return m, nil
}

// String formats m as ParseMix reads it (zero weights left out).
func (m Mix) String() string {
	var parts []string
	for _, f := range []struct {
		name string
		w    float64
	}{{"p2p", m.P2P}, {"group", m.Group}, {"room", m.Room}, {"event", m.Event},
		{"chat", m.Chat}, {"audio", m.Audio}, {"cmd", m.Cmd}, {"file", m.File}, {"message", m.Message}} {
		if f.w != 0 {
			parts = append(parts, f.name+"="+strconv.FormatFloat(f.w, 'g', -1, 64))
		}
	}
	return strings.Join(parts, ",")
}
