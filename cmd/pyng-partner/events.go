package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/pyng/receivables/client"
)

var eventCommands = []command{
	{name: "events list", summary: "List the site's events of the last 30 days, oldest first",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.after, "after", "", "only the events after this eventId")
			fs.StringVar(&o.eventType, "type", "", "only the events of this type, such as batch.completed")
		},
		run: listEvents},
	{name: "events tail", summary: "Follow the site's events, printing each new one as it comes",
		help: `From now on, or from the event after --after. It reads the events list, waiting --interval
between reads, twice as long after each read that brought nothing, up to --max-interval. Ctrl-C
stops it.`,
		flags: func(fs *flag.FlagSet, o *options) { followFlags(fs, o) },
		run:   tailEvents},
}

// followFlags are the flags of a command that follows the events list.
func followFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.after, "after", "", "start after this eventId (default: from now on)")
	fs.StringVar(&o.eventType, "type", "", "only the events of this type, such as batch.completed")
	fs.IntVar(&o.limit, "limit", 0, "stop after this many events (0: never)")
	fs.Var(&o.interval, "interval", "the wait between reads of the events list when events come")
	fs.Var(&o.maxInterval, "max-interval", "the longest wait between reads when none come")
}

var eventHeader = []any{"CREATED", "TYPE", "EVENT", "ABOUT"}

// eventRow writes an event for a person: when, what, and what it is about.
func eventRow(w io.Writer, ev client.Event) {
	row(w, when(ev.CreatedAt), ev.Type, ev.EventID, about(ev))
}

// about says in a few words what an event is about.
func about(ev client.Event) string {
	if l, err := ev.LinkData(); err == nil {
		return fmt.Sprintf("customer %s %s", l.CustomerReference, l.State)
	}
	if b, err := ev.BatchData(); err == nil {
		return fmt.Sprintf("batch %s %s: %d succeeded, %d failed of %d", b.BatchReference, b.State,
			b.Summary.Succeeded.Count, b.Summary.Failed.Count, b.RowCount)
	}
	if r, err := ev.RowData(); err == nil {
		return fmt.Sprintf("row %s of batch %s returned %s", r.RowReference, r.BatchReference, r.ReturnReason)
	}
	if ep, err := ev.EndpointData(); err == nil {
		return fmt.Sprintf("endpoint %s %s %s", ep.EndpointID, ep.State, ep.URL)
	}
	return "-"
}

// eventType reads --type.
func eventType(o *options) (client.EventType, error) {
	t := client.EventType(o.eventType)
	if t == "" || slices.Contains(client.EventTypes(), t) {
		return t, nil
	}
	return "", usagef("--type %q is not an event type", t)
}

func listEvents(ctx context.Context, e *env, _ []string) error {
	t, err := eventType(e.opts)
	if err != nil {
		return err
	}
	// The JSON of an event is written as the server sent it.
	return each(e, e.site.ListEvents(ctx, client.ListEventsOptions{After: e.opts.after, Type: t, Limit: 100}), eventHeader,
		eventRow)
}

func tailEvents(ctx context.Context, e *env, _ []string) error {
	tw := newTable(e.stdout) // the table of the events as they come, unless e.json
	return follow(ctx, e, func(ev client.Event) error {
		if e.json {
			_, err := fmt.Fprintf(e.stdout, "%s\n", ev.Raw)
			return err
		}
		// A line at a time: a table's columns cannot wait for events to come.
		eventRow(tw, ev)
		return tw.Flush()
	})
}

// follow calls f with each event of the site as it comes, from now or after --after, until
// --limit events or the end of ctx (which ends it without error). An error answer of the API
// other than a 429 or 5xx ends it; those, and network errors, are reported on stderr and the
// read is tried again after the next wait.
func follow(ctx context.Context, e *env, f func(client.Event) error) error {
	t, err := eventType(e.opts)
	if err != nil {
		return err
	}
	o := e.opts
	if o.limit < 0 {
		return usagef("--limit must be 0 or more")
	}
	after, from := o.after, "after "+o.after
	if after == "" {
		// From now on: past the newest event listed.
		if after, err = newest(ctx, e.site, t); err != nil {
			return ended(ctx, err)
		}
		from = "from now on"
	}
	fmt.Fprintf(e.stderr, "Following the events of site %s %s. Ctrl-C stops.\n", o.site, from)
	wait, seen := time.Duration(o.interval), 0
	for {
		got := 0
		for ev, err := range e.site.ListEvents(ctx, client.ListEventsOptions{After: after, Type: t, Limit: 100}) {
			if err != nil {
				if !transient(err) {
					return ended(ctx, err)
				}
				fmt.Fprintf(e.stderr, "pyng-partner: %v (trying again)\n", err)
				break
			}
			if err := f(ev); err != nil {
				return err
			}
			after = ev.EventID
			got++
			if seen++; o.limit > 0 && seen >= o.limit {
				return nil
			}
		}
		if got > 0 {
			wait = time.Duration(o.interval)
		} else {
			wait = min(2*wait, time.Duration(o.maxInterval))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// newest is the eventId of the newest event listed (of type t if set), or "" when there is none.
func newest(ctx context.Context, site *client.Site, t client.EventType) (string, error) {
	last := ""
	for ev, err := range site.ListEvents(ctx, client.ListEventsOptions{Type: t, Limit: 100}) {
		if err != nil {
			return "", err
		}
		last = ev.EventID
	}
	return last, nil
}

// transient reports whether err may pass: a network error, or an answer of 429 or 5xx.
func transient(err error) bool {
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode == 429 || apiErr.StatusCode >= 500
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// ended is nil when err is the end of ctx (Ctrl-C), else err.
func ended(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
