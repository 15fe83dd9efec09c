package main

import (
	"fmt"
	"sort"
	"strings"
)

// ourPrefixes are the prefixes of the variables rtm2kafka reads: a variable
// with one of them that no command knows is most likely a typo.
var ourPrefixes = []string{"RTM_", "KAFKA_", "SPOOL_", "BRIDGE_", "HTTP_", "SIM_", "LOG_", "SHUTDOWN_"}

// notOurs are variables with our prefixes that belong to someone else and
// must not be warned about: scripts/kafka.sh and scripts/test.sh (the local
// broker and its tools), Kafka's own start scripts, and the variables of
// the Kafka container in docker-compose.yml, which share a shell with us in
// a demo. (RTM2KAFKA_* test variables do not match "RTM_" at all.)
var notOurs = map[string]bool{
	// scripts/kafka.sh, scripts/test.sh, scripts/bench.sh
	"KAFKA_PORT": true, "KAFKA_CONTROLLER_PORT": true, "KAFKA_VERSION": true, "KAFKA_HEAP": true,
	"KAFKA_HOME": true, "KAFKA_CACHE": true, "KAFKA_STATE": true, "KAFKA_JVM_OPTS": true,
	"KAFKA_SERVER_PROPS": true, "KAFKA_START_TIMEOUT": true, "KAFKA_STOP_TIMEOUT": true,
	"KAFKA_PYTHON": true, "KAFKA_TOOLS_CP": true,
	// Kafka's bin/kafka-run-class.sh
	"KAFKA_OPTS": true, "KAFKA_HEAP_OPTS": true, "KAFKA_LOG4J_OPTS": true, "KAFKA_JMX_OPTS": true,
	"KAFKA_GC_LOG_OPTS": true, "KAFKA_JVM_PERFORMANCE_OPTS": true, "KAFKA_DEBUG": true, "KAFKA_CLUSTER_ID": true,
}

// knownVars are the variables of every command (a variable of sim is not a
// typo when set for run: one shell often serves both).
func knownVars() map[string]bool {
	known := map[string]bool{}
	for _, cfg := range []any{&RunConfig{}, &SimConfig{}, &KafkaConfig{}, &LogConfig{}} {
		for _, v := range describe(cfg) {
			known[v.Key] = true
		}
	}
	return known
}

// unknownVars returns one warning per variable of env that has one of our
// prefixes but is known to no command, with a "did you mean" for a near
// miss, sorted. It never shows a value.
func unknownVars(env map[string]string) []string {
	known := knownVars()
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []string
	for k := range env {
		if known[k] || notOurs[k] || !hasOurPrefix(k) || container(k) {
			continue
		}
		w := "unknown variable " + k + " is ignored"
		if best := nearest(k, names); best != "" {
			w += fmt.Sprintf(" (did you mean %s?)", best)
		}
		out = append(out, w)
	}
	sort.Strings(out)
	return out
}

func hasOurPrefix(k string) bool {
	for _, p := range ourPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// container reports the Kafka container's settings (KAFKA_CFG_*, and the
// apache/kafka image's KAFKA_<broker property>), which docker-compose
// passes to the broker, not to us.
func container(k string) bool {
	for _, p := range []string{"KAFKA_CFG_", "KAFKA_LISTENER", "KAFKA_ADVERTISED_", "KAFKA_CONTROLLER_", "KAFKA_PROCESS_ROLES",
		"KAFKA_NODE_ID", "KAFKA_OFFSETS_", "KAFKA_TRANSACTION_", "KAFKA_GROUP_", "KAFKA_AUTO_CREATE_", "KAFKA_LOG_DIRS", "KAFKA_NUM_"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// nearest is the known name closest to k by edit distance, if it is close
// enough to be a typo: at most 2 edits, or 3 for long names.
func nearest(k string, names []string) string {
	best, bestD := "", 1<<30
	for _, n := range names {
		if d := editDistance(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	limit := 2
	if len(k) >= 16 {
		limit = 3
	}
	if bestD > limit {
		return ""
	}
	return best
}

// editDistance is the Damerau–Levenshtein distance (optimal string
// alignment): insertions, deletions, substitutions and swaps of adjacent
// letters each cost 1, so ENDPIONT is one edit from ENDPOINT.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := 0; j <= len(b); j++ {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
