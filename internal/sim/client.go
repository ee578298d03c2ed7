package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client calls a simulator: its API with basic auth, or its control
// endpoints without credentials (User ""). Tests use it.
type Client struct {
	Base         string // http://host:port
	User, Secret string
	HTTP         *http.Client // [a client with a 30 s timeout]
}

// Answer is one response, read whole.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode reads the answer's JSON body into v.
func (a Answer) Decode(v any) error {
	if err := json.Unmarshal(a.Body, v); err != nil {
		return fmt.Errorf("decode the answer (%d): %w: %s", a.Status, err, a.Body)
	}
	return nil
}

// Do sends body (JSON; nil: none) to method path.
func (c Client) Do(method, path string, body any) (Answer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Answer{}, fmt.Errorf("encode %T: %w", body, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Secret)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	res, err := hc.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return Answer{}, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	return Answer{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}
