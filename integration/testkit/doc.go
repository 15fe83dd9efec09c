// Package testkit is the one shared kit of the project's tests: waiting on a
// condition ([Eventually], [Wait]), a goroutine-leak check ([CheckLeaks],
// [StableGoroutines], [WaitGoroutines]), the broker lookup ([Brokers]) and a
// franz-go client factory for tests ([Client], [Admin]) with the few Kafka
// helpers tests need ([CreateTopic], [WaitTopic], [ReadToEnd], [ReadAll]).
//
// It is a leaf: it imports nothing from this module, so tests of rtm,
// bridge and integration can all use it without import cycles.
//
// Kafka helpers never skip a test: without a broker the test fails and
// says how to get one (`bash scripts/kafka.sh start`, or `make test`).
// Tests wait on conditions with a deadline, never on sleeps.
package testkit
