package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
)

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q", s)
}

// newLogger builds the process logger from LOG_LEVEL and LOG_FORMAT. The
// text format writes structs, maps and slices as JSON, never as Go's
// {Field:value} dumps.
func newLogger(w io.Writer, c LogConfig) *slog.Logger {
	lvl, err := parseLevel(c.Level)
	if err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	opts.ReplaceAttr = jsonValues
	return slog.New(slog.NewTextHandler(w, opts))
}

// jsonValues renders a struct, map or slice attribute (other than an error,
// a Stringer, a LogValuer or bytes) as compact JSON.
func jsonValues(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindAny {
		return a
	}
	v := a.Value.Any()
	switch v.(type) {
	case error, fmt.Stringer, slog.LogValuer, []byte:
		return a
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return a
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array:
		if b, err := json.Marshal(v); err == nil {
			return slog.String(a.Key, string(b))
		}
	}
	return a
}
