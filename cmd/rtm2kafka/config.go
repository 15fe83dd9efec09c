package main

import (
	"errors"
	"flag"
	"fmt"
	"reflect"
	"sort"
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
}

// varInfo describes one configuration variable for flags, usage and errors.
type varInfo struct {
	Key, Default, Help, Field string
	Required                  bool
	Type                      reflect.Type
}

// describe lists the variables of a config struct in declaration order,
// nested structs included.
func describe(cfg any) []varInfo {
	var out []varInfo
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("env")
			if tag == "" {
				if f.Type.Kind() == reflect.Struct {
					walk(f.Type)
				}
				continue
			}
			key, opts, _ := strings.Cut(tag, ",")
			out = append(out, varInfo{
				Key: key, Default: f.Tag.Get("envDefault"), Help: f.Tag.Get("help"), Field: f.Name,
				Required: strings.Contains(opts, "required"), Type: f.Type,
			})
		}
	}
	walk(reflect.TypeOf(cfg).Elem())
	return out
}

// flagName turns RTM_ENDPOINT into rtm-endpoint.
func flagName(key string) string { return strings.ToLower(strings.ReplaceAll(key, "_", "-")) }

// bindFlags adds one string flag per variable of cfg to fs; values given on
// the command line override the environment.
func bindFlags(fs *flag.FlagSet, cfg any) map[string]*string {
	vals := map[string]*string{}
	for _, v := range describe(cfg) {
		help := v.Help + " (env " + v.Key
		if v.Default != "" && !secretVars[v.Key] {
			help += ", default " + v.Default
		}
		help += ")"
		vals[v.Key] = fs.String(flagName(v.Key), "", help)
	}
	return vals
}

// loadConfig fills cfg from environ, overridden by any flag that was set.
// Errors name the variable and what it expects, never its value.
func loadConfig(cfg any, environ map[string]string, flags map[string]*string) error {
	merged := make(map[string]string, len(environ))
	for k, v := range environ {
		merged[k] = v
	}
	for k, p := range flags {
		if p != nil && *p != "" {
			merged[k] = *p
		}
	}
	if err := env.ParseWithOptions(cfg, env.Options{Environment: merged}); err != nil {
		return configError(cfg, err)
	}
	return nil
}

// configError rewrites env's errors so that each names its variable and the
// expected type; values (which may be secrets) are never included.
func configError(cfg any, err error) error {
	byField := map[string]varInfo{}
	for _, v := range describe(cfg) {
		byField[v.Field] = v
	}
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("configuration: %w", err)
	}
	var msgs []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		var ne env.EnvVarIsNotSetError
		var ee env.EmptyEnvVarError
		var fe env.LoadFileContentError
		switch {
		case errors.As(e, &pe):
			v := byField[pe.Name]
			msgs = append(msgs, fmt.Sprintf("%s: invalid value, want %s", v.Key, typeWord(v.Type)))
		case errors.As(e, &ne):
			msgs = append(msgs, fmt.Sprintf("%s: required, not set", ne.Key))
		case errors.As(e, &ee):
			msgs = append(msgs, fmt.Sprintf("%s: must not be empty", ee.Key))
		case errors.As(e, &fe):
			msgs = append(msgs, fmt.Sprintf("%s: cannot read file %q", fe.Key, fe.Filename))
		default:
			msgs = append(msgs, "invalid configuration")
		}
	}
	sort.Strings(msgs)
	return fmt.Errorf("configuration: %s", strings.Join(msgs, "; "))
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

// usageVars formats the variable table for --help.
func usageVars(cfg any) string {
	var b strings.Builder
	for _, v := range describe(cfg) {
		def := v.Default
		if def == "" {
			def = "—"
		}
		fmt.Fprintf(&b, "  %-32s %s (default %s; flag --%s)\n", v.Key, v.Help, def, flagName(v.Key))
	}
	return b.String()
}
