package syncapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/internal/testnode"
	"github.com/edgenode/edgenode/node/core"
)

// BenchmarkSearch100k measures POST /search over real HTTP on a node with
// 100,000 messages in 10 rooms the user is joined to. Message i has four
// words: w<i mod 1000> (each word in 100 messages), c<i mod 10> (each in
// 10,000), "every" (all of them) and a filler. The sub-benchmarks search a
// rare word, two rare words that meet in 100 messages, a common word and
// the word in every message, each by rank and by recency (limit 10). It
// reports the median latency beside the mean.
func BenchmarkSearch100k(b *testing.B) {
	const rooms, perRoom = 10, 10_000
	tn := testnode.Start(b, testnode.Options{Configure: func(c *app.Config) { c.Node.NoSyncWrites = true }})
	e := &env{t: b, tn: tn, n: tn.App.Node}
	alice := e.user("alice")
	ids := make([]string, rooms)
	for r := range ids {
		ids[r] = e.room(alice, "private_chat")
	}
	var wg sync.WaitGroup
	errs := make(chan error, rooms)
	for r, room := range ids {
		wg.Add(1)
		go func() { // rooms commit in parallel
			defer wg.Done()
			for j := range perRoom {
				i := j*rooms + r
				body := fmt.Sprintf("w%d c%d every filler%d", i%1000, i%10, i%7)
				raw, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": body})
				_, err := e.n.SendEvent(context.Background(), core.SendRequest{
					Sender: alice.UserID, DeviceID: alice.DeviceID, RoomID: room, Type: "m.room.message", Content: raw,
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, term string }{
		{"rare", "w123"},
		{"and", "w123 c3"},
		{"common", "c7"},
		{"every", "every"},
	} {
		for _, order := range []string{"rank", "recent"} {
			b.Run(tc.name+"/"+order, func(b *testing.B) {
				body, _ := json.Marshal(map[string]any{"search_categories": map[string]any{"room_events": map[string]any{
					"search_term": tc.term, "order_by": order, "filter": map[string]any{"limit": 10},
				}}})
				count := 0
				var took []time.Duration
				for b.Loop() {
					start := time.Now()
					count = postSearch(b, tn.URL, alice.AccessToken, body)
					took = append(took, time.Since(start))
				}
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)/2].Microseconds()), "median-µs")
				b.ReportMetric(float64(count), "count")
			})
		}
	}
}

// postSearch posts a search and returns its count.
func postSearch(b *testing.B, base, token string, body []byte) int {
	req, err := http.NewRequest("POST", base+searchPath, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("status %d: %s", res.StatusCode, raw)
	}
	i := strings.Index(string(raw), `"count":`)
	if i < 0 {
		b.Fatalf("no count: %s", raw)
	}
	rest := string(raw[i+len(`"count":`):])
	n, _ := strconv.Atoi(rest[:strings.IndexAny(rest, ",}")])
	return n
}
