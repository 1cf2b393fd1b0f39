package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const apiVersion = "urn:pyng:api:billing:version:v1"

// client is a partner of the server under test: one site, one bearer token, keep-alive
// connections enough for the highest concurrency.
type client struct {
	base, siteID, token string
	http                *http.Client
}

func newClient(ctx context.Context, base string, creds credentials) (*client, error) {
	transport := &http.Transport{
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	c := &client{base: base, siteID: creds.siteID, http: &http.Client{Transport: transport, Timeout: 2 * time.Minute}}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(creds.clientID, creds.secret)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return nil, fmt.Errorf("POST /oauth2/token: status %d, %v", resp.StatusCode, err)
	}
	c.token = tok.AccessToken
	return c, nil
}

// statusError is an answer with another status than the one expected.
type statusError struct {
	method, path string
	status       int
	body         string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.method, e.path, e.status, e.body)
}

// call sends a request under the site's path and checks the answer's status; it returns the
// body when keep is set and discards it otherwise.
func (c *client) call(ctx context.Context, method, path string, body []byte, want int, keep bool) ([]byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	full := "/billing/sites/" + url.PathEscape(c.siteID) + path
	req, err := http.NewRequestWithContext(ctx, method, c.base+full, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Pyng-Api-Version", apiVersion)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return nil, &statusError{method, full, resp.StatusCode, string(b)}
	}
	if !keep {
		_, err = io.Copy(io.Discard, resp.Body)
		return nil, err
	}
	return io.ReadAll(resp.Body)
}

func (c *client) invite(ctx context.Context, ref string) error {
	_, err := c.call(ctx, http.MethodPost, "/customers/invitations", []byte(`{"customerReference":"`+ref+`"}`), http.StatusCreated, false)
	return err
}

func (c *client) signup(ctx context.Context, ref string) error {
	_, err := c.call(ctx, http.MethodPost, "/sandbox/customers/"+url.PathEscape(ref)+"/signup", nil, http.StatusOK, false)
	return err
}

func (c *client) submit(ctx context.Context, body []byte) error {
	_, err := c.call(ctx, http.MethodPost, "/batches", body, http.StatusAccepted, false)
	return err
}

// batchState is a batch as GET and the list give it, rows left out.
type batchState struct {
	BatchReference string `json:"batchReference"`
	State          string `json:"state"`
	SubmittedAt    int64  `json:"submittedAt"`
	CompletedAt    int64  `json:"completedAt"`
}

// batch reads a batch with its rows; with keep false it only checks that the answer is 200.
func (c *client) batch(ctx context.Context, ref string, keep bool) (batchState, error) {
	b, err := c.call(ctx, http.MethodGet, "/batches/"+url.PathEscape(ref), nil, http.StatusOK, keep)
	if err != nil || !keep {
		return batchState{}, err
	}
	var env struct{ Data batchState }
	return env.Data, json.Unmarshal(b, &env)
}

// page is one page of the site's batches, newest first, and the cursor of the next ("" on the last).
func (c *client) page(ctx context.Context, cursor string) ([]batchState, string, error) {
	path := "/batches?limit=100"
	if cursor != "" {
		path += "&cursor=" + url.QueryEscape(cursor)
	}
	b, err := c.call(ctx, http.MethodGet, path, nil, http.StatusOK, true)
	if err != nil {
		return nil, "", err
	}
	var page struct {
		Data       []batchState
		NextCursor string
	}
	err = json.Unmarshal(b, &page)
	return page.Data, page.NextCursor, err
}

// batches lists every batch of the site, following the cursor.
func (c *client) batches(ctx context.Context) ([]batchState, error) {
	var all []batchState
	cursor := ""
	for {
		page, next, err := c.page(ctx, cursor)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if next == "" {
			return all, nil
		}
		cursor = next
	}
}

// await reads the newest 100 batches every interval until each of refs (among them) is
// completed, and returns when each completed (Unix ms, the server's clock).
func (c *client) await(ctx context.Context, refs []string, interval, limit time.Duration) (map[string]int64, error) {
	deadline := time.Now().Add(limit)
	completed := map[string]int64{}
	for {
		page, _, err := c.page(ctx, "")
		if err != nil {
			return nil, err
		}
		for _, b := range page {
			if b.State == "completed" && slices.Contains(refs, b.BatchReference) {
				completed[b.BatchReference] = b.CompletedAt
			}
		}
		if len(completed) == len(refs) {
			return completed, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d batches completed after %s", len(completed), len(refs), limit)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// drain waits until every batch of the site is completed, so that one scenario's batches do
// not execute during the next one's measurement.
func (c *client) drain(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		all, err := c.batches(ctx)
		if err != nil {
			return err
		}
		open := 0
		for _, b := range all {
			if b.State != "completed" {
				open++
			}
		}
		if open == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d batches still not completed after %s", open, len(all), limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// batchJSON writes a submission of n rows over the customers, round robin, with amounts that
// include the sandbox's magic endings (51: insufficientFunds, 52: accountClosed).
func batchJSON(ref string, n int, customers []string) []byte {
	b := make([]byte, 0, 64+n*80)
	b = append(b, `{"batchReference":"`...)
	b = append(b, ref...)
	b = append(b, `","rows":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"rowReference":"R`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `","customerReference":"`...)
		b = append(b, customers[i%len(customers)]...)
		b = append(b, `","amount":`...)
		b = strconv.AppendInt(b, 1000+int64(i), 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}
