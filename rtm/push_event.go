package rtm

// Decoding of pushevent (spec §8.1). The required keys, in the order of
// their bits in the "seen" mask; data is optional.
var evKeys = [...]string{"pid", "event", "uid", "time", "endpoint"}

// eventField decodes the value of key into p for an event push. It returns
// the key's bit in the seen mask, 0 for an optional or skipped key.
func eventField(r *msgReader, p *Push, key []byte) (bit uint, err error) {
	switch string(key) {
	case "pid":
		p.PID, err = r.int()
		return 1 << 0, err
	case "event":
		p.Event, _, err = r.bytes()
		return 1 << 1, err
	case "uid":
		p.UID, err = r.int()
		return 1 << 2, err
	case "time":
		p.Time, err = r.int()
		return 1 << 3, err
	case "endpoint":
		p.Endpoint, _, err = r.bytes()
		return 1 << 4, err
	case "data":
		if c, _ := r.peek(); c == 0xc0 { // nil data: treat as absent
			r.off++
			return 0, nil
		}
		p.Data, p.DataBinary, err = r.bytes()
		p.HasData = err == nil
		return 0, err
	}
	return 0, r.skip()
}
