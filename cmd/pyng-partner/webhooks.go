package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pyng/receivables/client"
	"github.com/pyng/receivables/webhook"
)

var webhookCommands = []command{
	{name: "webhooks listen", summary: "Forward the site's events, signed, to a receiver on this machine",
		help: `Follows the events list (from now on, or after --after) and POSTs each event to --forward-to,
signed as Pyng signs its webhooks (Standard Webhooks: webhook-id, webhook-timestamp and
webhook-signature), with a secret of its own that it prints at start (or --secret). Verify with
that secret in the receiver, with any Standard Webhooks library. It needs no public URL and no
webhook endpoint: it reads the events as events tail does (--cursor-file too). A receiver that
fails is reported, and not sent the event again.`,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.forwardTo, "forward-to", "", "the receiver's URL (required), such as http://localhost:3000/webhooks")
			fs.StringVar(&o.secret, "secret", "", "sign with this secret (whsec_...) rather than a new one")
			followFlags(fs, o)
		},
		run: listen},
	{name: "webhooks create", summary: "Add a webhook endpoint: prints its secret, shown this once",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.endpointURL, "endpoint-url", "", "where the events are sent (required; https, or http in the sandbox)")
			fs.StringVar(&o.events, "events", "", "the event types sent to it, separated by commas (default: every type)")
		},
		run: createEndpoint},
	{name: "webhooks list", summary: "List the site's webhook endpoints", run: listEndpoints},
	{name: "webhooks show", args: "ENDPOINT_ID", nargs: 1, summary: "Show a webhook endpoint", run: showEndpoint},
	{name: "webhooks update", args: "ENDPOINT_ID", nargs: 1, summary: "Change a webhook endpoint's URL, event types or state",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.endpointURL, "endpoint-url", "", "the new URL")
			fs.StringVar(&o.events, "events", "", "the new event types, separated by commas (* for every type)")
			fs.BoolVar(&o.enable, "enable", false, "enable it")
			fs.BoolVar(&o.disable, "disable", false, "disable it: nothing is sent to it until enabled")
		},
		run: updateEndpoint},
	{name: "webhooks delete", args: "ENDPOINT_ID", nargs: 1, summary: "Delete a webhook endpoint and its deliveries", run: deleteEndpoint},
	{name: "webhooks rotate-secret", args: "ENDPOINT_ID", nargs: 1,
		summary: "Give an endpoint a new secret (both sign for 24 hours): prints it, shown this once", run: rotateSecret},
	{name: "webhooks deliveries", args: "ENDPOINT_ID", nargs: 1, summary: "List the deliveries to an endpoint, newest first",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.IntVar(&o.limit, "limit", 0, "at most this many (0: all)")
		},
		run: listDeliveries},
	{name: "webhooks retry", args: "ENDPOINT_ID DELIVERY_ID", nargs: 2, summary: "Send a delivery again now", run: retryDelivery},
}

var endpointHeader = []any{"ENDPOINT", "URL", "EVENTS", "STATE", "CREATED"}

func endpointRow(w io.Writer, ep client.WebhookEndpoint) {
	types := make([]string, len(ep.EventTypes))
	for i, t := range ep.EventTypes {
		types[i] = string(t)
	}
	state := string(ep.State)
	if ep.DisabledReason != "" {
		state += " (" + string(ep.DisabledReason) + ")"
	}
	row(w, ep.EndpointID, ep.URL, strings.Join(types, ","), state, when(ep.CreatedAt))
}

// eventTypes reads --events, a list of event types separated by commas: nil when not given; a
// list given that names none (",") is a mistake, not every type.
func eventTypes(list string) ([]client.EventType, error) {
	var types []client.EventType
	for t := range strings.SplitSeq(list, ",") {
		if t = strings.TrimSpace(t); t != "" {
			types = append(types, client.EventType(t))
		}
	}
	if types == nil && strings.TrimSpace(list) != "" {
		return nil, usagef("--events %q names no event type", list)
	}
	return types, nil
}

func createEndpoint(ctx context.Context, e *env, _ []string) error {
	if e.opts.endpointURL == "" {
		return usagef("--endpoint-url is required")
	}
	types, err := eventTypes(e.opts.events)
	if err != nil {
		return err
	}
	ep, err := e.site.CreateWebhookEndpoint(ctx, client.WebhookEndpointRequest{URL: e.opts.endpointURL, EventTypes: types})
	if err != nil {
		return err
	}
	return showSecret(e, ep)
}

func rotateSecret(ctx context.Context, e *env, args []string) error {
	ep, err := e.site.RotateWebhookSecret(ctx, args[0])
	if err != nil {
		return err
	}
	return showSecret(e, ep)
}

// showSecret writes an endpoint with its secret.
func showSecret(e *env, ep *client.WebhookEndpointWithSecret) error {
	return e.emit(ep, func(w io.Writer) {
		row(w, endpointHeader...)
		endpointRow(w, ep.WebhookEndpoint)
		fmt.Fprintf(w, "\nSecret (shown this once; verify its deliveries with it): %s\n", ep.Secret)
	})
}

func listEndpoints(ctx context.Context, e *env, _ []string) error {
	eps, err := e.site.WebhookEndpoints(ctx)
	if err != nil {
		return err
	}
	return each(e, func(yield func(client.WebhookEndpoint, error) bool) {
		for _, ep := range eps {
			if !yield(ep, nil) {
				return
			}
		}
	}, endpointHeader, endpointRow)
}

// showEndpoint writes the endpoint a call answered with.
func showEndpointOf(e *env, ep *client.WebhookEndpoint, err error) error {
	if err != nil {
		return err
	}
	return e.emit(ep, func(w io.Writer) {
		row(w, endpointHeader...)
		endpointRow(w, *ep)
	})
}

func showEndpoint(ctx context.Context, e *env, args []string) error {
	ep, err := e.site.GetWebhookEndpoint(ctx, args[0])
	return showEndpointOf(e, ep, err)
}

func updateEndpoint(ctx context.Context, e *env, args []string) error {
	o := e.opts
	types, err := eventTypes(o.events)
	if err != nil {
		return err
	}
	u := client.WebhookEndpointUpdate{URL: o.endpointURL, EventTypes: types}
	switch {
	case o.enable && o.disable:
		return usagef("--enable and --disable exclude each other")
	case o.enable:
		u.State = client.EndpointEnabled
	case o.disable:
		u.State = client.EndpointDisabled
	}
	if u.URL == "" && u.EventTypes == nil && u.State == "" {
		return usagef("nothing to change: give --endpoint-url, --events, --enable or --disable")
	}
	ep, err := e.site.UpdateWebhookEndpoint(ctx, args[0], u)
	return showEndpointOf(e, ep, err)
}

func deleteEndpoint(ctx context.Context, e *env, args []string) error {
	ep, err := e.site.DeleteWebhookEndpoint(ctx, args[0])
	return showEndpointOf(e, ep, err)
}

var deliveryHeader = []any{"DELIVERY", "EVENT", "TYPE", "STATE", "CREATED", "ATTEMPTS", "LAST"}

func deliveryRow(w io.Writer, d client.Delivery) {
	last := "-"
	if n := len(d.Attempts); n > 0 {
		a := d.Attempts[n-1]
		switch {
		case a.Error != "" && a.Status != 0:
			last = fmt.Sprintf("%d %s (%s)", a.Status, a.Error, a.Duration())
		case a.Error != "":
			last = fmt.Sprintf("%s (%s)", a.Error, a.Duration())
		default:
			last = fmt.Sprintf("%d (%s)", a.Status, a.Duration())
		}
	}
	row(w, d.DeliveryID, d.EventID, d.EventType, d.State, when(d.CreatedAt), len(d.Attempts), last)
}

func listDeliveries(ctx context.Context, e *env, args []string) error {
	limit := e.opts.limit
	if limit < 0 {
		return usagef("--limit must be 0 or more")
	}
	all := e.site.ListDeliveries(ctx, args[0], client.ListDeliveriesOptions{Limit: 100})
	return each(e, func(yield func(client.Delivery, error) bool) {
		n := 0
		for d, err := range all {
			if !yield(d, err) || err != nil {
				return
			}
			if n++; limit > 0 && n >= limit {
				return
			}
		}
	}, deliveryHeader, deliveryRow)
}

func retryDelivery(ctx context.Context, e *env, args []string) error {
	d, err := e.site.RetryDelivery(ctx, args[0], args[1])
	if err != nil {
		return err
	}
	return e.emit(d, func(w io.Writer) {
		row(w, deliveryHeader...)
		deliveryRow(w, *d)
	})
}

// forwarded is what webhooks listen reports of each event it forwarded.
type forwarded struct {
	EventID    string           `json:"eventId"`
	Type       client.EventType `json:"type"`
	Status     int              `json:"status,omitempty"`
	Error      string           `json:"error,omitempty"`
	DurationMs int64            `json:"durationMs"`
}

func listen(ctx context.Context, e *env, _ []string) error {
	o := e.opts
	if o.forwardTo == "" {
		return usagef("--forward-to is required")
	}
	if u, err := url.Parse(o.forwardTo); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--forward-to %q is not an http or https URL", o.forwardTo)
	}
	secret, err := webhook.NewSecret()
	if o.secret != "" {
		secret, err = webhook.ParseSecret(o.secret)
	}
	if err != nil {
		return usagef("--secret: %v", err)
	}
	shown := secret.Reveal()
	if o.secret != "" { // the caller has it; printed, it would stay in a CI log or a terminal's scrollback
		shown = "the one given with --secret"
	}
	fmt.Fprintf(e.stderr, "Ready. Forwarding the events of site %s to %s.\nWebhook signing secret: %s\n", o.site, o.forwardTo, shown)
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tw := newTable(e.stdout) // the table of the events as they come, unless e.json
	return follow(ctx, e, func(ev client.Event) error {
		f := forward(ctx, hc, o.forwardTo, ev, secret)
		if e.json {
			return writeJSON(e.stdout, f)
		}
		result := fmt.Sprintf("[%d]", f.Status)
		if f.Error != "" {
			result = f.Error
		}
		row(tw, when(ev.CreatedAt), ev.Type, ev.EventID, "-> "+result, fmt.Sprintf("%dms", f.DurationMs))
		return tw.Flush()
	})
}

// forward POSTs the event, as the server sent it, to the URL, signed with secret.
func forward(ctx context.Context, hc *http.Client, to string, ev client.Event, secret webhook.Secret) forwarded {
	f := forwarded{EventID: ev.EventID, Type: ev.Type}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to, bytes.NewReader(ev.Raw))
	if err != nil {
		f.Error = err.Error()
		return f
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pyng-partner webhooks listen")
	for _, h := range webhook.Headers(ev.EventID, start, ev.Raw, secret) {
		req.Header.Set(h.Name, h.Value)
	}
	resp, err := hc.Do(req)
	f.DurationMs = time.Since(start).Milliseconds()
	if err != nil {
		f.Error = err.Error()
		return f
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	f.Status = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		f.Error = fmt.Sprintf("the receiver answered %d", resp.StatusCode)
	}
	return f
}
