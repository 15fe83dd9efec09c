package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/rtm2kafka/rtm2kafka/topics"
)

// ErrTopicsMissing is wrapped by [CheckTopics] when topics the bridge needs
// do not exist.
var ErrTopicsMissing = errors.New("topics missing")

// CheckTopics is the start-up check for a bridge that does not create its
// topics (KAFKA_CREATE_TOPICS=false: the platform team creates them): every
// topic of r — the data, events, dead-letter, control and control-results
// topics — must exist. It needs only DESCRIBE on them. The error names each
// missing topic (wrapping [ErrTopicsMissing]), and for a topic the broker
// refuses to describe, the topic, the operation and principal (as the
// caller names it, e.g. "User:bridge"); it never creates anything.
func CheckTopics(ctx context.Context, adm *kadm.Client, r *topics.Router, principal string) error {
	names := append(r.Topics(), r.DeadLetterTopic(), r.ControlTopic(), r.ControlResultsTopic())
	md, err := adm.Metadata(ctx, names...)
	if err != nil {
		return fmt.Errorf("bridge: check topics: %w", err)
	}
	var missing, denied []string
	var other []error
	for _, n := range names {
		d, ok := md.Topics[n]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, n)
		case errors.Is(d.Err, kerr.TopicAuthorizationFailed):
			denied = append(denied, n)
		case d.Err != nil:
			other = append(other, fmt.Errorf("topic %s: %w", n, d.Err))
		}
	}
	var errs []error
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("bridge: %w (KAFKA_CREATE_TOPICS=false: the platform team creates them; or set KAFKA_CREATE_TOPICS=true and grant CREATE on them): %s",
			ErrTopicsMissing, strings.Join(missing, ", ")))
	}
	if len(denied) > 0 {
		errs = append(errs, fmt.Errorf("bridge: not authorized: %s may not DESCRIBE topic %s: %w",
			principal, strings.Join(denied, ", "), kerr.TopicAuthorizationFailed))
	}
	if len(other) > 0 {
		errs = append(errs, fmt.Errorf("bridge: check topics: %w", errors.Join(other...)))
	}
	return errors.Join(errs...)
}
