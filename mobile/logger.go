package mobile

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// Log levels passed to Logger.Log; they are slog's levels.
const (
	LevelDebug = int(slog.LevelDebug)
	LevelInfo  = int(slog.LevelInfo)
	LevelWarn  = int(slog.LevelWarn)
	LevelError = int(slog.LevelError)
)

// Logger receives the node's log lines. An app implements it (in Java,
// Kotlin, Objective-C or Swift) to route them to logcat or os_log. level is
// one of LevelDebug, LevelInfo, LevelWarn or LevelError; message is one line
// of key=value text. Log may be called from any thread and should not block.
type Logger interface {
	Log(level int, message string)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("mobile: config: log_level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// callbackSink turns one formatted record into one Logger.Log call. The
// text handler writes each record with a single Write, under mu, and level
// is set just before, so the callback gets the record's level.
type callbackSink struct {
	mu     sync.Mutex
	level  slog.Level
	logger Logger
	buf    bytes.Buffer
}

func (s *callbackSink) Write(p []byte) (int, error) {
	s.buf.Reset()
	s.buf.Write(p)
	line := strings.TrimRight(s.buf.String(), "\n")
	func() {
		// A panicking callback must not take the node down with it.
		defer func() { _ = recover() }()
		s.logger.Log(int(s.level), line)
	}()
	return len(p), nil
}

// callbackHandler is an slog.Handler that formats as slog's text handler
// does and hands each line to a Logger.
type callbackHandler struct {
	sink  *callbackSink
	inner slog.Handler
}

// newLogger returns an slog.Logger writing to l at the given level.
func newLogger(l Logger, level slog.Level) *slog.Logger {
	sink := &callbackSink{logger: l}
	inner := slog.NewTextHandler(sink, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			// The level travels as Log's argument; time is the app's to add.
			if len(groups) == 0 && (a.Key == slog.LevelKey || a.Key == slog.TimeKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	return slog.New(callbackHandler{sink: sink, inner: inner})
}

func (h callbackHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h callbackHandler) Handle(ctx context.Context, r slog.Record) error {
	h.sink.mu.Lock()
	defer h.sink.mu.Unlock()
	h.sink.level = r.Level
	return h.inner.Handle(ctx, r)
}

func (h callbackHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return callbackHandler{sink: h.sink, inner: h.inner.WithAttrs(attrs)}
}

func (h callbackHandler) WithGroup(name string) slog.Handler {
	return callbackHandler{sink: h.sink, inner: h.inner.WithGroup(name)}
}
