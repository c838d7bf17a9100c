package clientapi

import (
	"bufio"
	"encoding/json"
	"net/http"
)

// streamRoomKeys writes the keys of a backup ({"rooms":{...}}) or of one
// of its rooms ({"sessions":{...}}) as the node reads them, a page at a
// time: a full backup may be tens of megabytes, more than a phone should
// hold at once. The node checks the version before it hands over the
// first key, so an unknown version is still an ordinary error; a failure
// after the first byte can only cut the response short.
func (a *api) streamRoomKeys(w http.ResponseWriter, r *http.Request, p roomKeysPath) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	started := false
	start := func() {
		started = true
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if p.roomID == "" {
			_, _ = bw.WriteString(`{"rooms":{`)
		} else {
			_, _ = bw.WriteString(`{"sessions":{`)
		}
	}
	room, firstInRoom := "", true
	err := a.n.RoomKeys(r.Context(), p.userID, p.version, p.roomID, func(roomID, sessionID string, key json.RawMessage) error {
		if !started {
			start()
		}
		if p.roomID == "" && (room == "" || roomID != room) {
			if room != "" {
				_, _ = bw.WriteString(`}},`)
			}
			writeJSONString(bw, roomID)
			_, _ = bw.WriteString(`:{"sessions":{`)
			room, firstInRoom = roomID, true
		}
		if !firstInRoom {
			_ = bw.WriteByte(',')
		}
		firstInRoom = false
		writeJSONString(bw, sessionID)
		_ = bw.WriteByte(':')
		_, err := bw.Write(key)
		return err
	})
	if err != nil && !started {
		return err
	}
	if err != nil {
		// Too late for an error response: drop the connection, so the
		// client sees a truncated body and not a short list of keys.
		if r.Context().Err() == nil {
			a.log.Warn("reading the key backup", "user", p.userID, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	if !started {
		start()
	}
	if room != "" {
		_, _ = bw.WriteString(`}}`)
	}
	_, _ = bw.WriteString(`}}`)
	_ = bw.Flush()
	return nil
}

// writeJSONString writes s as a JSON string.
func writeJSONString(bw *bufio.Writer, s string) {
	b, _ := json.Marshal(s)
	_, _ = bw.Write(b)
}
