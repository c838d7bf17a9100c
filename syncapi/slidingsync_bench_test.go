package syncapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/edgenode/edgenode/app"
)

// BenchmarkSlidingSyncWindow20: a user in 100 or 2,000 rooms of 10 events
// each; one sliding sync request for the top 20 rooms (timeline_limit 1,
// name and lazy members), as a client opening its room list does. "initial"
// starts a new connection every time (the whole window is rendered);
// "incremental" continues one after a message in one room. The response
// should cost about the same whatever the room count: only the window's
// rooms are rendered, and ordering reads one small index entry per room.
// cpu-ms/op (initial only: the incremental loop sends messages between
// requests) is the process's CPU time, steadier than wall time on a busy
// machine.
//
//	go test ./syncapi -run '^$' -bench SlidingSyncWindow20 -benchtime 2s
func BenchmarkSlidingSyncWindow20(b *testing.B) {
	for _, rooms := range []int{100, 2000} {
		b.Run(fmt.Sprintf("rooms=%d", rooms), func(b *testing.B) {
			e := newEnv(b)
			alice := e.user("alice")
			ids := e.roomsOf(alice, rooms, 10)
			h := app.Handler(e.n)
			withExt := false
			body := func(pos string) []byte {
				req := map[string]any{"lists": map[string]any{"top": ssList(0, 19, 1,
					[]string{"m.room.name", ""}, []string{"m.room.member", "$LAZY"})}}
				if pos != "" {
					req["pos"] = pos
				}
				if withExt {
					req["extensions"] = allExtensions("", "", 100)
				}
				raw, _ := json.Marshal(req)
				return raw
			}
			do := func(b *testing.B, raw []byte) ssResp {
				req := httptest.NewRequest("POST", ssPath, bytes.NewReader(raw))
				req.Header.Set("Authorization", "Bearer "+alice.AccessToken)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("sliding sync: %d %s", rec.Code, rec.Body.Bytes())
				}
				var res ssResp
				if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
					b.Fatal(err)
				}
				return res
			}
			b.Run("initial", func(b *testing.B) {
				first := do(b, body(""))
				if len(first.Rooms) != 20 || first.Lists["top"].Count != rooms {
					b.Fatalf("%d rooms, count %d", len(first.Rooms), first.Lists["top"].Count)
				}
				b.ReportAllocs()
				cpu := cpuTime(b)
				for b.Loop() {
					do(b, body(""))
				}
				reportCPU(b, cpu)
			})
			// As matrix-js-sdk asks: every extension on, the sticky events
			// one included (it looks at every room the list matches).
			b.Run("initial-extensions", func(b *testing.B) {
				withExt = true
				defer func() { withExt = false }()
				b.ReportAllocs()
				cpu := cpuTime(b)
				for b.Loop() {
					do(b, body(""))
				}
				reportCPU(b, cpu)
			})
			b.Run("incremental", func(b *testing.B) {
				pos := do(b, body("")).Pos
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					b.StopTimer()
					e.say(alice, ids[i%len(ids)], "tick")
					i++
					b.StartTimer()
					res := do(b, body(pos))
					if len(res.Rooms) != 1 {
						b.Fatalf("%d rooms changed, want 1", len(res.Rooms))
					}
					pos = res.Pos
				}
			})
		})
	}
}
