package federation

import (
	"context"
	"io"
	"log/slog"

	"github.com/sirupsen/logrus"
)

// libraryLogger routes gomatrixserverlib's logrus output (it logs through
// util.GetLogger(ctx)) into the node's slog logger. It is a private logrus
// instance put into each request's context with util.ContextWithLogger:
// logrus's package-level logger is never touched. Errors become warnings
// (they are mostly caused by peers) and everything else is debug; trace
// output is dropped.
func libraryLogger(log *slog.Logger) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.DebugLevel)
	l.AddHook(slogHook{log: log})
	return logrus.NewEntry(l).WithField("lib", "gomatrixserverlib")
}

type slogHook struct{ log *slog.Logger }

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	if e.Level <= logrus.ErrorLevel {
		level = slog.LevelWarn
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if !h.log.Enabled(ctx, level) {
		return nil
	}
	attrs := make([]slog.Attr, 0, len(e.Data))
	for k, v := range e.Data {
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		attrs = append(attrs, slog.Any(k, v))
	}
	h.log.LogAttrs(ctx, level, e.Message, attrs...)
	return nil
}
