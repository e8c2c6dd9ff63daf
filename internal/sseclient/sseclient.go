// Package sseclient is a small Server-Sent Events client over one TCP connection, for the tests
// and the bench of the nodes' room event streams (GET /v1/rooms/{room_id}/events): it sends
// the request, reads the answer's head, then reads frames (an event's id and data, or a
// comment) line by line, each read under a deadline.
package sseclient

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"redrain/internal/roomevents"
)

// Stream is one subscription.
type Stream struct {
	Conn   net.Conn
	Status int         // the answer's status code
	Header http.Header // the answer's headers
	Word   string      // the error word of a refused subscription (Status != 200)
	br     *bufio.Reader
}

// Frame is one block of the stream: an event (ID, Data) or a comment.
type Frame struct {
	ID, Data, Comment string
}

// Event is an event's data as the nodes write it.
type Event = roomevents.Data

// Dial subscribes to path on addr, sending headers (name, value, name, value...). A refused
// subscription is returned with its Status and Word and the connection closed; err is for
// what went wrong on the way (dial, write, a malformed head).
func Dial(addr, path string, timeout time.Duration, headers ...string) (*Stream, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\n")
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(headers[i] + ": " + headers[i+1] + "\r\n")
	}
	b.WriteString("\r\n")
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, b.String()); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("sseclient: answer head: %w", err)
	}
	s := &Stream{Conn: c, Status: resp.StatusCode, Header: resp.Header, br: br}
	if resp.StatusCode != 200 {
		var e struct{ Error string }
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		_ = json.Unmarshal(body, &e)
		s.Word = e.Error
		c.Close()
		return s, nil
	}
	c.SetDeadline(time.Time{})
	return s, nil
}

// ErrLine: the stream held a line that is not a field this client knows.
var ErrLine = errors.New("sseclient: unexpected line")

// Next reads the next frame, by the deadline.
func (s *Stream) Next(deadline time.Time) (Frame, error) {
	s.Conn.SetReadDeadline(deadline)
	var f Frame
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return f, nil
		case strings.HasPrefix(line, ":"):
			f.Comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id: "):
			f.ID = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			f.Data = line[len("data: "):]
		default:
			return f, fmt.Errorf("%w: %q", ErrLine, line)
		}
	}
}

// NextEvent reads frames, skipping comments, until an event, by the deadline.
func (s *Stream) NextEvent(deadline time.Time) (Frame, Event, error) {
	for {
		f, err := s.Next(deadline)
		if err != nil {
			return f, Event{}, err
		}
		if f.Data == "" {
			continue
		}
		var e Event
		if err := json.Unmarshal([]byte(f.Data), &e); err != nil {
			return f, e, fmt.Errorf("sseclient: event data %q: %w", f.Data, err)
		}
		return f, e, nil
	}
}

// Close closes the connection.
func (s *Stream) Close() error { return s.Conn.Close() }
