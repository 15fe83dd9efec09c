package integration

import (
	"fmt"
	"sort"
	"sync"

	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// MsgID identifies one message as the gateway and a consumer both see it:
// the four values a redelivery repeats (docs/records.md, Headers).
type MsgID struct {
	Scope    rtm.Scope
	From, To int64
	MID      int64
}

func (id MsgID) String() string {
	return fmt.Sprintf("%s from=%d to=%d mid=%d", id.Scope, id.From, id.To, id.MID)
}

// Ledger is the exactness checker. Plug [Ledger.OnAnswered] into
// [rtmsim.Config.OnAnswered]: it records every push the simulator saw
// answered, and [Ledger.Check] compares the pushes answered OK with the
// records in Kafka. Messages are matched by [MsgID]; events, which have no
// id, by count per uid. Safe for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	ok      map[MsgID]int // message answered OK → times (a redelivery may be answered again)
	events  map[int64]int // uid → events answered OK
	late    int           // answered OK after the simulator's AnswerTimeout
	errored int           // answered with an error
}

// NewLedger returns an empty Ledger.
func NewLedger() *Ledger {
	return &Ledger{ok: make(map[MsgID]int), events: make(map[int64]int)}
}

// OnAnswered has the signature of [rtmsim.Config.OnAnswered].
func (l *Ledger) OnAnswered(scope rtm.Scope, from, to, mid int64, ok, late bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case !ok:
		l.errored++
	case scope == rtm.ScopeEvent:
		l.events[to]++
	default:
		l.ok[MsgID{scope, from, to, mid}]++
	}
	if ok && late {
		l.late++
	}
}

// Answered returns the distinct messages plus the events answered OK so far.
func (l *Ledger) Answered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.ok)
	for _, c := range l.events {
		n += c
	}
	return n
}

// Exactness is what [Ledger.Check] found.
type Exactness struct {
	Answered   int     // distinct messages + events the simulator saw answered OK
	Late       int     // of which answered after AnswerTimeout (overdue)
	Errored    int     // pushes answered with an error (not expected in Kafka)
	Records    int     // data records read
	Found      int     // answered ones present in Kafka
	Lost       int     // answered OK but not in Kafka: must be 0
	Duplicates int     // extra copies of a message (messages only: events have no id)
	Unanswered int     // records in Kafka whose push the simulator did not see answered OK (events: beyond the answered count)
	LostSample []MsgID // up to 10 lost messages (events as scope=event to=uid)
	DupSample  []MsgID // up to 10 messages written more than once
}

func (e Exactness) String() string {
	return fmt.Sprintf("answered=%d (late %d) errored=%d records=%d found=%d lost=%d duplicates=%d in_kafka_not_answered=%d",
		e.Answered, e.Late, e.Errored, e.Records, e.Found, e.Lost, e.Duplicates, e.Unanswered)
}

// RecordID returns the identity of a data record from its headers, and
// whether it is an event (then only Scope and To are set).
func RecordID(r *Record) (MsgID, error) {
	var id MsgID
	switch r.Headers[topics.HeaderScope] {
	case "p2p":
		id.Scope = rtm.ScopeP2P
	case "group":
		id.Scope = rtm.ScopeGroup
	case "room":
		id.Scope = rtm.ScopeRoom
	case "event":
		id.Scope = rtm.ScopeEvent
	default:
		return id, fmt.Errorf("%s/%d@%d: bad %s header %q", r.Topic, r.Partition, r.Offset, topics.HeaderScope, r.Headers[topics.HeaderScope])
	}
	var ok bool
	if id.To, ok = r.HeaderInt(topics.HeaderTo); !ok {
		return id, fmt.Errorf("%s/%d@%d: no %s header", r.Topic, r.Partition, r.Offset, topics.HeaderTo)
	}
	if id.Scope == rtm.ScopeEvent {
		return id, nil
	}
	if id.From, ok = r.HeaderInt(topics.HeaderFrom); !ok {
		return id, fmt.Errorf("%s/%d@%d: no %s header", r.Topic, r.Partition, r.Offset, topics.HeaderFrom)
	}
	if id.MID, ok = r.HeaderInt(topics.HeaderMID); !ok {
		return id, fmt.Errorf("%s/%d@%d: no %s header", r.Topic, r.Partition, r.Offset, topics.HeaderMID)
	}
	return id, nil
}

// Check compares what was answered OK with recs (every data record read
// back, e.g. by [ReadTopics] over [DataTopics]).
func (l *Ledger) Check(recs []Record) (Exactness, error) {
	seen := make(map[MsgID]int, len(recs))
	evs := make(map[int64]int)
	for i := range recs {
		id, err := RecordID(&recs[i])
		if err != nil {
			return Exactness{}, err
		}
		if id.Scope == rtm.ScopeEvent {
			evs[id.To]++
		} else {
			seen[id]++
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := Exactness{Late: l.late, Errored: l.errored, Records: len(recs)}
	var lost []MsgID
	for id := range l.ok {
		e.Answered++
		if n := seen[id]; n > 0 {
			e.Found++
		} else {
			lost = append(lost, id)
		}
	}
	for id, n := range seen {
		if l.ok[id] == 0 {
			e.Unanswered++
		}
		e.Duplicates += n - 1
		if n > 1 && len(e.DupSample) < 10 {
			e.DupSample = append(e.DupSample, id)
		}
	}
	for uid, n := range l.events {
		e.Answered += n
		got := evs[uid]
		e.Found += min(n, got)
		if got < n {
			for range n - got {
				lost = append(lost, MsgID{Scope: rtm.ScopeEvent, To: uid})
			}
		}
	}
	for uid, got := range evs {
		if extra := got - l.events[uid]; extra > 0 {
			// Events carry no id: an extra one is counted as in Kafka but
			// not answered, though it may be a redelivered copy.
			e.Unanswered += extra
		}
	}
	e.Lost = len(lost)
	sort.Slice(lost, func(i, j int) bool { return lost[i].MID < lost[j].MID })
	if len(lost) > 10 {
		lost = lost[:10]
	}
	e.LostSample = lost
	return e, nil
}
