package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// heartbeat is how often an idle event stream sends a comment, so that
// proxies and browsers keep it open.
const heartbeat = 15 * time.Second

// events serves GET /events: the event stream as server-sent events
// (text/event-stream), one "event: TYPE", "id: N" and "data: JSON" per
// Event. ?types=A,B keeps only those types; Last-Event-ID (header or
// ?since=) replays the kept events after it (?since=0: all kept).
func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	after := int64(-1) // no replay
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("since")
	}
	if last != "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Last-Event-ID/since: want an event ID", "code": "invalid"})
			return
		}
		after = n
	}
	var types map[string]bool
	if t := r.URL.Query().Get("types"); t != "" {
		types = map[string]bool{}
		for _, s := range strings.Split(t, ",") {
			types[strings.TrimSpace(s)] = true
		}
	}
	ch := c.broker.subscribe(r.Context(), after)
	if ch == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the console is stopping", "code": "unavailable"})
		return
	}
	defer c.broker.unsubscribe(ch)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": baton events\n\n")
	fl.Flush()
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
			fmt.Fprint(w, ": heartbeat\n\n")
			fl.Flush()
		case e, ok := <-ch:
			if !ok {
				return // the console stops, or this client fell behind
			}
			if types != nil && !types[e.Type] {
				continue
			}
			b, err := json.Marshal(e)
			if err != nil {
				continue
			}
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, b)
			fl.Flush()
		}
	}
}
