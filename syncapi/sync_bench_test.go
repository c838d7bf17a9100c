package syncapi_test

// Benchmarks of /sync. Targets from the issue: an initial sync of 100 rooms
// under 50 ms, an empty incremental sync under 1 ms, a wake-up median under
// 3 ms. Run with, for example:
//
//	go test ./syncapi -run '^$' -bench 'Sync|LongPoll' -benchtime 3s
//
// "http" sub-benchmarks go through the node's real HTTP server on
// loopback; "handler" ones call the same handler in process, which is the
// server's own time without the network and the client.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// syncRunner runs one /sync request for a user and checks its status.
type syncRunner func(b *testing.B, q url.Values) []byte

// runners returns the two ways of calling /sync.
func (e *env) runners(s node.Session) map[string]syncRunner {
	h := app.Handler(e.n)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	return map[string]syncRunner{
		"http": func(b *testing.B, q url.Values) []byte {
			req, err := http.NewRequest("GET", e.tn.URL+"/_matrix/client/v3/sync?"+q.Encode(), nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+s.AccessToken)
			res, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			raw, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				b.Fatalf("sync: %d %v %s", res.StatusCode, err, raw)
			}
			return raw
		},
		"handler": func(b *testing.B, q url.Values) []byte {
			req := httptest.NewRequest("GET", "/_matrix/client/v3/sync?"+q.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+s.AccessToken)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("sync: %d %s", rec.Code, rec.Body.Bytes())
			}
			return rec.Body.Bytes()
		},
	}
}

// roomsOf creates rooms for a user, each holding events events (the 6 of
// creation, then messages).
func (e *env) roomsOf(s node.Session, rooms, events int) []string {
	var ids []string
	for range rooms {
		room := e.room(s, core.PresetPrivateChat)
		for i := range events - 6 {
			e.say(s, room, "message "+strconv.Itoa(i))
		}
		ids = append(ids, room)
	}
	return ids
}

// BenchmarkInitialSync100Rooms: a user in 100 rooms of 100 events each, an
// initial sync with a timeline limit of 20.
func BenchmarkInitialSync100Rooms(b *testing.B) {
	e := newEnv(b)
	alice := e.user("alice")
	e.roomsOf(alice, 100, 100)
	q := vals("filter", `{"room":{"timeline":{"limit":20}}}`)
	for _, mode := range []string{"http", "handler"} {
		run := e.runners(alice)[mode]
		b.Run(mode, func(b *testing.B) {
			raw := run(b, q)
			if n := len(decodeSync(b, raw).Rooms.Join); n != 100 {
				b.Fatalf("%d rooms", n)
			}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			cpu := cpuTime(b)
			for b.Loop() {
				run(b, q)
			}
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkIncrementalSyncEmpty: since is the current position and timeout
// 0: the server's time to find nothing new, for a user in 1 and in 100
// rooms. In the "busy" case other users' rooms moved on since, so the
// node's position is past since and every room of the user is looked at.
func BenchmarkIncrementalSyncEmpty(b *testing.B) {
	e := newEnv(b)
	other := e.user("other")
	elsewhere := e.room(other, core.PresetPrivateChat)
	for _, rooms := range []int{1, 100} {
		u := e.user(fmt.Sprint("user", rooms))
		e.roomsOf(u, rooms, 20)
		for _, busy := range []bool{false, true} {
			for _, mode := range []string{"http", "handler"} {
				run := e.runners(u)[mode]
				name := fmt.Sprintf("rooms=%d/%s", rooms, mode)
				if busy {
					name = fmt.Sprintf("rooms=%d/busy/%s", rooms, mode)
				}
				b.Run(name, func(b *testing.B) {
					q := vals("since", e.now(), "timeout", "0")
					if busy {
						e.say(other, elsewhere, "elsewhere")
					}
					if body := decodeSync(b, run(b, q)); len(body.Rooms.Join) != 0 {
						b.Fatalf("not empty: %s", body.Raw)
					}
					b.ReportAllocs()
					cpu := cpuTime(b)
					for b.Loop() {
						run(b, q)
					}
					reportCPU(b, cpu)
				})
			}
		}
	}
}

// sinceRoom makes a room with 2,000 state changes over 20 keys and then 10
// messages. old is a since token from before the changes, recent one from
// before the last 20 of them: both syncs send the same response (the 10
// messages, limited, and the 20 keys' current events), so they differ only
// in how far back since is. In a "young" room old is right after the room's
// creation; in a "settled" one 20 messages came before it.
func sinceRoom(b *testing.B, young bool) (e *env, alice node.Session, old, recent string) {
	e = newEnv(b)
	alice = e.user("alice")
	room := e.room(alice, core.PresetPrivateChat)
	if !young {
		for i := range 20 {
			e.say(alice, room, fmt.Sprint("before ", i))
		}
	}
	old = e.now()
	for i := range 2000 {
		if i == 1980 {
			recent = e.now()
		}
		e.setState(alice, room, "x.counter", strconv.Itoa(i%20), map[string]int{"n": i})
	}
	for i := range 10 {
		e.say(alice, room, fmt.Sprint("m", i))
	}
	return e, alice, old, recent
}

func benchSince(b *testing.B, which string) {
	for _, young := range []bool{false, true} {
		name := "settled-room"
		if young {
			name = "young-room"
		}
		b.Run(name, func(b *testing.B) {
			e, alice, old, recent := sinceRoom(b, young)
			run := e.runners(alice)["handler"]
			// The two tokens give the same response.
			var bodies [2]string
			for i, since := range []string{old, recent} {
				for _, jr := range decodeSync(b, run(b, vals("since", since))).Rooms.Join {
					bodies[i] = fmt.Sprint(ids(jr.Timeline.Events), jr.Timeline.Limited, stateTypes(jr.State.Events), len(jr.State.Events))
				}
			}
			if bodies[0] != bodies[1] || bodies[0] == "" {
				b.Fatalf("old and recent since differ:\n%s\n%s", bodies[0], bodies[1])
			}
			q := vals("since", map[string]string{"old": old, "recent": recent}[which], "timeout", "0")
			b.ReportAllocs()
			for b.Loop() {
				run(b, q)
			}
		})
	}
}

// BenchmarkSyncOldSince: an incremental sync from before 2,000 state
// changes. Compare with BenchmarkSyncRecentSince: the same response from
// 30 events back.
func BenchmarkSyncOldSince(b *testing.B) { benchSince(b, "old") }

// BenchmarkSyncRecentSince: see BenchmarkSyncOldSince.
func BenchmarkSyncRecentSince(b *testing.B) { benchSince(b, "recent") }

// BenchmarkSyncWake measures the latency from a send to another user's
// waiting /sync returning with it, over HTTP. p50-ms counts from the start
// of the send (the sender's commit included); p50-after-send-ms from the
// moment the send returned (the wake-up path alone).
func BenchmarkSyncWake(b *testing.B) {
	e := newEnv(b)
	alice, bob := e.user("alice"), e.user("bob")
	room := e.room(alice, core.PresetPublicChat)
	e.join(bob, room)
	e.online(alice, bob)
	client := longPollClient()
	var total, afterSend []time.Duration
	for b.Loop() {
		since := e.now()
		p := e.startPoll(client, bob, vals("since", since, "timeout", "60000"), nil)
		p.waitWritten(b)
		start := time.Now()
		e.say(alice, room, "ping")
		sent := time.Now()
		r := p.result(b)
		if _, ok := r.body.Rooms.Join[room]; !ok {
			b.Fatalf("woken sync: %s", r.body.Raw)
		}
		total = append(total, r.at.Sub(start))
		afterSend = append(afterSend, max(0, r.at.Sub(sent)))
	}
	b.ReportMetric(percentileMS(total, 50), "p50-ms")
	b.ReportMetric(percentileMS(total, 90), "p90-ms")
	b.ReportMetric(percentileMS(afterSend, 50), "p50-after-send-ms")
}

// BenchmarkLongPoll500Idle is TestLongPoll500Idle as a benchmark: one run
// of 500 idle long-polls; cpu-% is the process's CPU time over a 5 s idle
// window, in percent of one core; wake-ms the two room members' wake-up.
func BenchmarkLongPoll500Idle(b *testing.B) {
	for b.Loop() {
		r := longPoll500(b, 5*time.Second)
		b.ReportMetric(r.cpuPercent, "cpu-%")
		b.ReportMetric(r.settleCPUPercent, "settle-cpu-%")
		b.ReportMetric(float64(max(r.wake[0], r.wake[1]))/1e6, "wake-ms")
	}
}

// reportCPU reports the process's CPU time per operation since start (all
// goroutines: the server's, and in "http" mode the client's too). Unlike
// ns/op it does not grow when other processes load the machine.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N)/1e6, "cpu-ms/op")
}

func percentileMS(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[(len(s)-1)*p/100]) / 1e6
}

func decodeSync(b *testing.B, raw []byte) syncBody {
	b.Helper()
	var body syncBody
	if err := json.Unmarshal(raw, &body); err != nil {
		b.Fatal(err)
	}
	body.Raw = raw
	return body
}
