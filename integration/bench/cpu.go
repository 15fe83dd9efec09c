package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPU accounting of the other parties on the machine, from /proc: the
// broker's JVM, this driver (the simulator) and the whole machine, to show
// where the two cores went during a run.

// clkTck is USER_HZ, 100 on every Linux this runs on.
const clkTck = 100

// procCPUSeconds returns utime+stime of pid in seconds; 0 if unknown.
func procCPUSeconds(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clkTck
}

// machineBusySeconds returns the CPU seconds all CPUs spent not idle.
func machineBusySeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy float64
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest, guest_nice are already in user
			break
		}
		busy += x
	}
	return busy / clkTck
}

// brokerPID finds the Kafka broker JVM serving the default scripts/kafka.sh
// state dir (or the only kafka.Kafka process); 0 if none.
func brokerPID() int {
	state := os.Getenv("RTM2KAFKA_STATE")
	if state == "" {
		state = "/tmp/rtm2kafka-kafka"
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var only []int
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil || !strings.Contains(string(b), "kafka.Kafka") {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		if strings.Contains(string(b), filepath.Join(state, "server.properties")) {
			return pid
		}
		only = append(only, pid)
	}
	if len(only) == 1 {
		return only[0]
	}
	return 0
}
