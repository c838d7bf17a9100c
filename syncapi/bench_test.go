package syncapi_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
)

// BenchmarkMessages measures GET /messages (limit 20, newest first) over
// real HTTP on a room of 1000 events.
func BenchmarkMessages(b *testing.B) {
	e := newEnv(b)
	alice := e.user("alice")
	room := e.room(alice, "private_chat")
	for i := range 1000 - 6 { // createRoom sent 6 events
		e.say(alice, room, fmt.Sprint("message ", i))
	}
	u := e.tn.URL + "/_matrix/client/v3/rooms/" + url.PathEscape(room) + "/messages?dir=b&limit=20"
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+alice.AccessToken)
	b.ReportAllocs()
	for b.Loop() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}
