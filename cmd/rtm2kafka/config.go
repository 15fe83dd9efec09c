package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// KafkaConfig is the Kafka connection shared by run, ctl and tail.
type KafkaConfig struct {
	Brokers        []string          `env:"KAFKA_BROKERS" envDefault:"127.0.0.1:19092" help:"comma-separated bootstrap brokers (host:port)"`
	TopicPrefix    string            `env:"KAFKA_TOPIC_PREFIX" envDefault:"rtm" help:"prefix of every topic: <prefix>.<scope>.<kind>, <prefix>.events, <prefix>.control, …"`
	TopicOverrides map[string]string `env:"KAFKA_TOPIC_OVERRIDES" help:"per-kind topic names, e.g. p2p.chat:chats,events:logins"`
	TLS            bool              `env:"KAFKA_TLS" envDefault:"false" help:"connect to the brokers with TLS"`
	TLSCAFile      string            `env:"KAFKA_TLS_CA_FILE" help:"PEM file of CAs to trust (default: the system pool)"`
	TLSCertFile    string            `env:"KAFKA_TLS_CERT_FILE" help:"client certificate PEM (mutual TLS)"`
	TLSKeyFile     string            `env:"KAFKA_TLS_KEY_FILE" help:"client key PEM (mutual TLS)"`
	TLSServerName  string            `env:"KAFKA_TLS_SERVER_NAME" help:"server name to verify, if not the broker host"`
	TLSInsecure    bool              `env:"KAFKA_TLS_INSECURE_SKIP_VERIFY" envDefault:"false" help:"do not verify the broker certificate (testing only)"`
	SASLMechanism  string            `env:"KAFKA_SASL_MECHANISM" help:"PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty = no SASL"`
	SASLUsername   string            `env:"KAFKA_SASL_USERNAME" help:"SASL user name"`
	SASLPassword   rtm.Secret        `env:"KAFKA_SASL_PASSWORD" help:"SASL password (never logged)"`
	SASLPassFile   rtm.Secret        `env:"KAFKA_SASL_PASSWORD_FILE,file" help:"file holding the SASL password, instead of KAFKA_SASL_PASSWORD"`
}

// LogConfig selects the log output.
type LogConfig struct {
	Level  string `env:"LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	Format string `env:"LOG_FORMAT" envDefault:"text" help:"text or json"`
}

// Secret-bearing variables, named so that usage and errors never print their values.
var secretVars = map[string]bool{
	"RTM_SECRET": true, "RTM_SECRET_FILE": true, "KAFKA_SASL_PASSWORD": true, "KAFKA_SASL_PASSWORD_FILE": true,
	"HTTP_CONTROL_TOKEN": true, "HTTP_CONTROL_TOKEN_FILE": true,
}

// varInfo describes one configuration variable for flags, usage and errors.
type varInfo struct {
	Key, Default, Help, Field string
	Required, File            bool
	// EmptyOK (tag empty:"ok") means an empty value is a setting of its
	// own, not the default: HTTP_ADDR= disables the HTTP server. Without
	// it, a variable with a default that is set but empty is an error.
	EmptyOK bool
	Type    reflect.Type
	Index   []int // the field's index path in the config struct
}

// secretOnCommandLine reports whether v holds a secret itself (an
// rtm.Secret that is not read from a file): such a variable has no flag,
// since every user can read a command line in ps.
func (v varInfo) secretOnCommandLine() bool {
	return v.Type == reflect.TypeOf(rtm.Secret("")) && !v.File
}

// describe lists the variables of a config struct in declaration order,
// nested structs included.
func describe(cfg any) []varInfo {
	var out []varInfo
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			at := append(append([]int(nil), index...), i)
			tag := f.Tag.Get("env")
			if tag == "" {
				if f.Type.Kind() == reflect.Struct {
					walk(f.Type, at)
				}
				continue
			}
			key, opts, _ := strings.Cut(tag, ",")
			out = append(out, varInfo{
				Key: key, Default: f.Tag.Get("envDefault"), Help: f.Tag.Get("help"), Field: f.Name,
				Required: strings.Contains(opts, "required"), File: strings.Contains(opts, "file"),
				EmptyOK: f.Tag.Get("empty") == "ok", Type: f.Type, Index: at,
			})
		}
	}
	walk(reflect.TypeOf(cfg).Elem(), nil)
	return out
}

// flagName turns RTM_ENDPOINT into rtm-endpoint.
func flagName(key string) string { return strings.ToLower(strings.ReplaceAll(key, "_", "-")) }

// refusedFlag is what the value of a secret's flag is replaced with, so
// that loadConfig can refuse it without ever holding the secret.
const refusedFlag = "\x00refused"

// flagValue is the flag of one variable: its value and whether it was given
// at all, so that --http-addr= (given, empty) overrides the environment
// like HTTP_ADDR= does, while no flag leaves the environment alone.
type flagValue struct {
	val    string
	set    bool
	secret bool // the value is dropped and replaced by refusedFlag
}

func (f *flagValue) String() string {
	if f == nil {
		return ""
	}
	return f.val
}

func (f *flagValue) Set(s string) error {
	f.val, f.set = s, true
	if f.secret {
		f.val = refusedFlag // the value is dropped here, never stored or printed
	}
	return nil
}

// bindFlags adds one string flag per variable of cfg to fs; values given on
// the command line override the environment. A secret's flag exists only to
// be refused by loadConfig with a message naming the variable to use.
func bindFlags(fs *flag.FlagSet, cfg any) map[string]*flagValue {
	vals := map[string]*flagValue{}
	for _, v := range describe(cfg) {
		if v.secretOnCommandLine() {
			p := &flagValue{secret: true}
			fs.Var(p, flagName(v.Key), "refused: use "+v.Key+" or "+v.Key+"_FILE")
			vals[v.Key] = p
			continue
		}
		help := v.Help + " (env " + v.Key
		if v.Default != "" && !secretVars[v.Key] {
			help += ", default " + v.Default
		}
		help += ")"
		p := &flagValue{}
		fs.Var(p, flagName(v.Key), help)
		vals[v.Key] = p
	}
	return vals
}

// loadConfig fills cfg from environ, overridden by any flag that was set
// (to any value, empty included). A secret given as a flag is refused
// (errUsage). Errors name the variable and what it expects, never its
// value; every invalid variable is reported, as a *configErrors.
//
// A variable that has a default and is set but empty is an error (unset it
// to get the default): caarlos0/env would silently apply the default, and
// KAFKA_TOPIC_PREFIX= is more likely a template gone wrong than a wish for
// "rtm". Variables tagged empty:"ok" take the empty value instead
// (HTTP_ADDR= disables the HTTP server).
func loadConfig(cfg any, environ map[string]string, flags map[string]*flagValue) error {
	merged := make(map[string]string, len(environ))
	for k, v := range environ {
		merged[k] = v
	}
	var refused []string
	for _, v := range describe(cfg) {
		if p := flags[v.Key]; p != nil && p.val == refusedFlag {
			refused = append(refused, fmt.Sprintf("--%s: a secret on the command line is visible to every user (ps); set %s or %s_FILE (a file holding it) instead",
				flagName(v.Key), v.Key, v.Key))
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("%w: %s", errUsage, strings.Join(refused, "; "))
	}
	for k, p := range flags {
		if p != nil && p.set {
			merged[k] = p.val
		}
	}
	ce := &configErrors{}
	var keepEmpty []varInfo
	for _, v := range describe(cfg) {
		if val, ok := merged[v.Key]; !ok || val != "" || v.Default == "" {
			continue
		}
		if v.EmptyOK {
			keepEmpty = append(keepEmpty, v)
			continue
		}
		ce.add(v.Key, fmt.Sprintf("%s: set but empty: give a value, or unset it for the default (%s)", v.Key, v.Default))
	}
	if err := env.ParseWithOptions(cfg, env.Options{Environment: merged}); err != nil {
		ce.addEnv(cfg, err)
	}
	// env applied the default to these; an empty value is what was asked for.
	for _, v := range keepEmpty {
		reflect.ValueOf(cfg).Elem().FieldByIndex(v.Index).SetZero()
	}
	if len(ce.msgs) > 0 {
		sort.Strings(ce.msgs)
		return ce
	}
	return nil
}

// configErrors is every invalid variable of a configuration, reported in
// one message: "configuration: A: …; B: …".
type configErrors struct {
	msgs []string
	vars map[string]bool // the variables named
}

func (e *configErrors) Error() string {
	if len(e.msgs) == 1 {
		return "configuration: " + e.msgs[0]
	}
	return fmt.Sprintf("configuration: %d problems:\n  %s", len(e.msgs), strings.Join(e.msgs, "\n  "))
}

func (e *configErrors) add(key, msg string) {
	if e.vars == nil {
		e.vars = map[string]bool{}
	}
	e.vars[key] = true
	e.msgs = append(e.msgs, msg)
}

// merge adds the messages of validation (each "VAR: …" or "A, B: …") that
// are not about a variable already reported (a value that did not parse is
// zero, so validation would complain about it a second time).
func (e *configErrors) merge(msgs []string) {
	for _, m := range msgs {
		names, _, _ := strings.Cut(m, ": ")
		dup := false
		for _, n := range strings.FieldsFunc(names, func(r rune) bool { return r == ',' || r == ' ' || r == '/' }) {
			dup = dup || e.vars[n]
		}
		if !dup {
			e.msgs = append(e.msgs, m)
		}
	}
}

// addEnv adds env's errors so that each names its variable and the
// expected type; values (which may be secrets) are never included.
func (e *configErrors) addEnv(cfg any, err error) {
	byField := map[string]varInfo{}
	for _, v := range describe(cfg) {
		byField[v.Field] = v
	}
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		e.msgs = append(e.msgs, "cannot read the environment")
		return
	}
	for _, err := range agg.Errors {
		var pe env.ParseError
		var ne env.EnvVarIsNotSetError
		var ee env.EmptyEnvVarError
		var fe env.LoadFileContentError
		switch {
		case errors.As(err, &pe):
			v := byField[pe.Name]
			e.add(v.Key, fmt.Sprintf("%s: invalid value, want %s", v.Key, typeWord(v.Type)))
		case errors.As(err, &ne):
			e.add(ne.Key, fmt.Sprintf("%s: required, not set", ne.Key))
		case errors.As(err, &ee):
			e.add(ee.Key, fmt.Sprintf("%s: must not be empty", ee.Key))
		case errors.As(err, &fe):
			e.add(fe.Key, fmt.Sprintf("%s: cannot read file %q", fe.Key, fe.Filename))
		default:
			e.msgs = append(e.msgs, "invalid configuration")
		}
	}
}

func typeWord(t reflect.Type) string {
	if t == reflect.TypeOf(time.Duration(0)) {
		return "a duration such as 500ms, 5s or 2m"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Slice:
		return "a comma-separated list"
	case reflect.Map:
		return "a comma-separated list of key:value pairs"
	}
	return "a " + t.Kind().String()
}

// usageVars formats the variable list of --help: the variable and its flag
// on one line, what it does and its default on the next.
func usageVars(cfg any) string {
	var b strings.Builder
	for _, v := range describe(cfg) {
		fl := "--" + flagName(v.Key) + " " + typeName(v.Type)
		if v.secretOnCommandLine() {
			fl = "(environment only)"
		}
		help := v.Help
		if v.Default != "" {
			help += " (default " + v.Default + ")"
		}
		fmt.Fprintf(&b, "  %-31s %s\n        %s\n", v.Key, fl, help)
	}
	return b.String()
}

// checkHostPort checks that addr is host:port with a port from 1 to 65535,
// as [bridge.CheckBrokerAddr] does, but says what is wrong without
// repeating the value (the caller names the variable).
func checkHostPort(addr string) error {
	if strings.TrimSpace(addr) == "" {
		return errors.New("empty (a stray comma?)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return errors.New("missing the port: want host:port")
		}
		return errors.New("want host:port")
	}
	if host == "" {
		return errors.New("empty host: want host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("the port is not a number from 1 to 65535")
	}
	return nil
}

// checkListenAddr checks that addr is a host:port to listen on: the host
// may be empty (every interface) and the port 0 (any free one). Like
// [checkHostPort], it never repeats the value.
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return errors.New("missing the port: want host:port")
		}
		return errors.New("want host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("the port is not a number from 0 to 65535")
	}
	return nil
}
