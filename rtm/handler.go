package rtm

import "context"

// PushHandler receives the gateway's pushes, one at a time, in arrival order.
//
// HandlePush is called on the connection's reader goroutine; while it runs no
// further push is read, so a handler that blocks applies backpressure to the
// gateway. The push is valid only until HandlePush returns. The handler must
// settle r exactly once — with [Reply.OK] or [Reply.Error] — possibly later
// and from any goroutine; a push that is never settled is never answered.
// Pings and duplicates are answered by the session and never reach the
// handler. An undecodable push does reach it, with p.Err set and p.Raw
// holding the frame.
type PushHandler interface {
	HandlePush(ctx context.Context, p *Push, r Reply)
}

// PushHandlerFunc adapts a function to [PushHandler].
type PushHandlerFunc func(ctx context.Context, p *Push, r Reply)

// HandlePush calls f(ctx, p, r).
func (f PushHandlerFunc) HandlePush(ctx context.Context, p *Push, r Reply) { f(ctx, p, r) }
