package bridge

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

func TestParseCommand(t *testing.T) {
	tr, fa := true, false
	many := make([]string, MaxCommandIDs+1)
	for i := range many {
		many[i] = fmt.Sprint(i + 1)
	}
	tests := []struct {
		name string
		in   string
		want Command
		err  string
	}{
		{"add", `{"id":"c1","op":"add","gids":[3,1],"uids":[9223372036854775807],"events":["login"]}`,
			Command{ID: "c1", Op: rtm.OpAdd, GIDs: []int64{3, 1}, UIDs: []int64{9223372036854775807}, Events: []string{"login"}}, ""},
		{"remove", `{"id":"c2","op":"remove","rids":[5]}`, Command{ID: "c2", Op: rtm.OpRemove, RIDs: []int64{5}}, ""},
		{"set with absent lists", `{"id":"c3","op":"set","gids":[]}`, Command{ID: "c3", Op: rtm.OpSet, GIDs: []int64{}}, ""},
		{"set nothing", `{"id":"c3b","op":"set"}`, Command{ID: "c3b", Op: rtm.OpSet}, ""},
		{"set_all some flags", `{"op":"set_all","p2p":true,"ev":false,"id":"c4"}`, Command{ID: "c4", Op: rtm.OpSetAll, P2P: &tr, Ev: &fa}, ""},

		{"not json", `hello`, Command{}, "bridge: command: not a JSON object"},
		{"array", `[1]`, Command{}, "bridge: command: not a JSON object"},
		{"trailing", `{"id":"x","op":"set"} {}`, Command{ID: "x", Op: rtm.OpSet}, "bridge: command: data after the JSON object"},
		{"unknown field", `{"id":"c5","op":"add","gids":[1],"extra":1}`, Command{ID: "c5", GIDs: []int64{1}}, `bridge: command: field "extra": unknown field`},
		{"duplicate field", `{"id":"c6","op":"add","gids":[1],"gids":[2]}`, Command{ID: "c6", GIDs: []int64{1}}, `bridge: command: field "gids" appears twice`},
		{"id missing", `{"op":"add","gids":[1]}`, Command{GIDs: []int64{1}}, `bridge: command: field "id" is required`},
		{"id empty", `{"id":"","op":"add","gids":[1]}`, Command{GIDs: []int64{1}}, `bridge: command: field "id": empty`},
		{"id number", `{"id":7,"op":"add","gids":[1]}`, Command{}, `bridge: command: field "id": want a string, got a number`},
		{"id too long", `{"id":"` + strings.Repeat("é", 129) + `","op":"add","gids":[1]}`, Command{}, `bridge: command: field "id": 129 characters, more than 128`},
		{"id after bad field", `{"gids":["1"],"id":"c7","op":"add"}`, Command{ID: "c7"}, `bridge: command: field "gids": element 0: want a positive integer, got a string`},
		{"op missing", `{"id":"c8","gids":[1]}`, Command{ID: "c8", GIDs: []int64{1}}, `bridge: command: field "op" is required`},
		{"op unknown", `{"id":"c9","op":"replace","gids":[1]}`, Command{ID: "c9", GIDs: []int64{1}}, `bridge: command: field "op": unknown op "replace": want add, remove, set or set_all`},
		{"op not string", `{"id":"c9","op":1}`, Command{ID: "c9"}, `bridge: command: field "op": want a string, got a number`},
		{"negative id", `{"id":"d1","op":"add","uids":[1,-5]}`, Command{ID: "d1"}, `bridge: command: field "uids": element 1: -5 is not a positive id`},
		{"zero id", `{"id":"d2","op":"add","uids":[0]}`, Command{ID: "d2"}, `bridge: command: field "uids": element 0: 0 is not a positive id`},
		{"float id", `{"id":"d3","op":"add","rids":[1.5]}`, Command{ID: "d3"}, `bridge: command: field "rids": element 0: 1.5 is not an integer`},
		{"exponent id", `{"id":"d4","op":"add","rids":[1e3]}`, Command{ID: "d4"}, `bridge: command: field "rids": element 0: 1e3 is not an integer`},
		{"huge id", `{"id":"d5","op":"add","gids":[9223372036854775808]}`, Command{ID: "d5"}, `bridge: command: field "gids": element 0: 9223372036854775808 is larger than 2^63-1`},
		{"string id", `{"id":"d6","op":"add","gids":["12"]}`, Command{ID: "d6"}, `bridge: command: field "gids": element 0: want a positive integer, got a string`},
		{"null list", `{"id":"d7","op":"add","gids":null}`, Command{ID: "d7"}, `bridge: command: field "gids": want an array of ids, got null`},
		{"list not array", `{"id":"d8","op":"add","gids":5}`, Command{ID: "d8"}, `bridge: command: field "gids": want an array of ids, got a number`},
		{"nested", `{"id":"d9","op":"add","gids":[[1]]}`, Command{ID: "d9"}, `bridge: command: field "gids": element 0: want a positive integer, got an array`},
		{"empty event", `{"id":"e1","op":"add","events":[""]}`, Command{ID: "e1"}, `bridge: command: field "events": element 0: empty event name`},
		{"long event", `{"id":"e2","op":"add","events":["` + strings.Repeat("a", 65) + `"]}`, Command{ID: "e2"}, `bridge: command: field "events": element 0: 65 characters, more than 64`},
		{"event number", `{"id":"e3","op":"add","events":[1]}`, Command{ID: "e3"}, `bridge: command: field "events": element 0: want a string, got a number`},
		{"flag not bool", `{"id":"f1","op":"set_all","p2p":1}`, Command{ID: "f1"}, `bridge: command: field "p2p": want true or false, got a number`},
		{"flag string", `{"id":"f2","op":"set_all","room":"true"}`, Command{ID: "f2"}, `bridge: command: field "room": want true or false, got a string`},
		{"set_all with list", `{"id":"f3","op":"set_all","p2p":true,"gids":[1]}`, Command{ID: "f3", Op: rtm.OpSetAll, P2P: &tr, GIDs: []int64{1}}, `bridge: command: op set_all takes only the flags p2p, group, room and ev, not "gids"`},
		{"set_all no flags", `{"id":"f4","op":"set_all"}`, Command{ID: "f4", Op: rtm.OpSetAll}, `bridge: command: op set_all needs at least one of p2p, group, room, ev`},
		{"add with flag", `{"id":"f5","op":"add","gids":[1],"group":true}`, Command{ID: "f5", Op: rtm.OpAdd, GIDs: []int64{1}, Group: &tr}, `bridge: command: op add takes only the lists gids, rids, uids and events, not "group"`},
		{"add empty", `{"id":"f6","op":"add","gids":[],"uids":[]}`, Command{ID: "f6", Op: rtm.OpAdd, GIDs: []int64{}, UIDs: []int64{}}, `bridge: command: op add needs at least one non-empty list of gids, rids, uids or events`},
		{"remove nothing", `{"id":"f7","op":"remove"}`, Command{ID: "f7", Op: rtm.OpRemove}, `bridge: command: op remove needs at least one non-empty list of gids, rids, uids or events`},
		{"too many in one list", `{"id":"g1","op":"add","gids":[` + strings.Join(many, ",") + `]}`, Command{ID: "g1"}, `bridge: command: field "gids": 10001 ids, more than 10000: split it`},
		{"too many in total", `{"id":"g2","op":"set","gids":[` + strings.Join(many[:6000], ",") + `],"uids":[` + strings.Join(many[:4001], ",") + `]}`,
			Command{ID: "g2", Op: rtm.OpSet}, `bridge: command: 10001 ids and events, more than 10000: split it`},
		{"too big", `{"id":"h1","op":"add","events":["` + strings.Repeat("a", MaxCommandBytes) + `"]}`, Command{}, "bridge: command: 1048612 bytes, more than 1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommand([]byte(tt.in))
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("ParseCommand: %v", err)
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Fatalf("ParseCommand error = %v, want %q", err, tt.err)
			}
			if tt.err != "" {
				if got.ID != tt.want.ID {
					t.Fatalf("ID on error = %q, want %q", got.ID, tt.want.ID)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseCommand = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCommandChange(t *testing.T) {
	cur := rtm.ListenState{P2P: true, Group: false, Room: true, Ev: false, GIDs: []int64{1}}
	c, err := ParseCommand([]byte(`{"id":"x","op":"set_all","group":true,"room":false}`))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Change(cur)
	want := rtm.ListenChange{Op: rtm.OpSetAll, P2P: true, Group: true, Room: false, Ev: false}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("set_all change = %+v, want %+v (absent flags keep their value)", got, want)
	}
	c, err = ParseCommand([]byte(`{"id":"y","op":"set","uids":[4,2]}`))
	if err != nil {
		t.Fatal(err)
	}
	st := cur.Apply(c.Change(cur))
	if st.GIDs != nil || !reflect.DeepEqual(st.UIDs, []int64{2, 4}) || !st.P2P || !st.Room {
		t.Fatalf("set applied = %+v: want gids cleared, uids [2 4], flags kept", st)
	}
}
