package main

import (
	"fmt"
	"strings"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// listenJSON returns s with nil lists made empty, so /status shows [] as
// ctl does, never null.
func listenJSON(s rtm.ListenState) rtm.ListenState {
	s = s.Clone()
	for _, l := range []*[]int64{&s.GIDs, &s.RIDs, &s.UIDs} {
		if *l == nil {
			*l = []int64{}
		}
	}
	if s.Events == nil {
		s.Events = []string{}
	}
	return s
}

// listenSummary is a listen state in one short line for the log:
// "p2p,group,room,ev gids=5,6 events=login", or "nothing".
func listenSummary(s rtm.ListenState) string {
	var parts []string
	var flags []string
	for _, f := range []struct {
		on   bool
		name string
	}{{s.P2P, "p2p"}, {s.Group, "group"}, {s.Room, "room"}, {s.Ev, "ev"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	if len(flags) > 0 {
		parts = append(parts, "all of "+strings.Join(flags, ","))
	}
	ids := func(name string, l []int64) {
		if len(l) == 0 {
			return
		}
		s := make([]string, len(l))
		for i, id := range l {
			s[i] = fmt.Sprint(id)
		}
		parts = append(parts, name+"="+strings.Join(s, ","))
	}
	ids("gids", s.GIDs)
	ids("rids", s.RIDs)
	ids("uids", s.UIDs)
	if len(s.Events) > 0 {
		parts = append(parts, "events="+strings.Join(s.Events, ","))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, " ")
}

// listenOrigin is /status's "listen_origin": where the listen state comes
// from. The state starts from RTM_LISTEN_ALL; at start the bridge replays
// the control topic's history (commands at offsets below
// restored_before_offset, refused ones skipped), and applies later commands
// live.
type listenOrigin struct {
	Source               string `json:"source"`                 // "defaults" (RTM_LISTEN_ALL only), "control" (changed by control commands) or "ha" (restored by the active role)
	ListenAll            string `json:"listen_all"`             // RTM_LISTEN_ALL
	ControlTopic         string `json:"control_topic"`          // where the commands are
	RestoredBeforeOffset int64  `json:"restored_before_offset"` // commands below this offset were replayed at start (or at the last takeover); -1 not yet restored
	RestoredCommands     int    `json:"restored_commands"`      // commands of that history applied (accepted by the gateway)
	RestoredSkipped      int    `json:"restored_skipped"`       // commands of that history skipped (refused by the gateway, or invalid)
	AppliedSinceStart    uint64 `json:"applied_since_start"`    // commands applied live since start
	RejectedSinceStart   uint64 `json:"rejected_since_start"`   // commands rejected live since start
}

// origin computes listenOrigin from what the run knows.
func (c *RunCommand) origin(st bridge.Stats) listenOrigin {
	o := listenOrigin{
		ListenAll: c.Config.RTMListenAll, ControlTopic: c.controlTopic,
		RestoredBeforeOffset: -1,
		AppliedSinceStart:    st.ControlApplied, RejectedSinceStart: st.ControlRejected,
	}
	if r, ok := c.bridge.LastRestore(); ok {
		o.RestoredBeforeOffset, o.RestoredCommands, o.RestoredSkipped = r.NextOffset, r.Applied, r.Skipped
	}
	switch {
	case c.Config.HA:
		o.Source = "ha"
	case o.RestoredCommands > 0 || o.AppliedSinceStart > 0:
		o.Source = "control"
	default:
		o.Source = "defaults"
	}
	return o
}
