package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
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
between reads, twice as long after each read that brought nothing, up to --max-interval. When
the event it reads on from is purged (events are kept 30 days), it reads the list again from
its oldest event, giving none twice. With --cursor-file it keeps where it is in that file, and
run again goes on from there (ahead of --after), missing none of the events that came
meanwhile. Ctrl-C stops it.`,
		flags: func(fs *flag.FlagSet, o *options) { followFlags(fs, o) },
		run:   tailEvents},
}

// followFlags are the flags of a command that follows the events list.
func followFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.after, "after", "", "start after this eventId (default: from now on)")
	fs.StringVar(&o.cursorFile, "cursor-file", "", "a file that keeps where it is: read at start (ahead of --after) and written after each event, so that run again it goes on where it stopped, missing none")
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

func listEvents(ctx context.Context, e *env, _ []string) error {
	// --type is the server's to check: it may know types this program does not.
	opts := client.ListEventsOptions{After: e.opts.after, Type: client.EventType(e.opts.eventType), Limit: 100}
	return each(e, e.site.ListEvents(ctx, opts), eventHeader, eventRow)
}

func tailEvents(ctx context.Context, e *env, _ []string) error {
	tw := newTable(e.stdout) // the table of the events as they come, unless e.json
	return follow(ctx, e, func(ev client.Event) error {
		if e.json {
			return writeJSON(e.stdout, ev)
		}
		// A line at a time: a table's columns cannot wait for events to come.
		eventRow(tw, ev)
		return tw.Flush()
	})
}

// follow calls f with each event of the site as it comes, from now or after --after, until
// --limit events or the end of ctx (which ends it without error). An error answer of the API
// other than a 429 or 5xx ends it; those, and reads without an answer (client.Temporary), are
// reported on stderr and the read is tried again after the next wait. The purge of the event it
// reads on from does not end it (see position).
func follow(ctx context.Context, e *env, f func(client.Event) error) error {
	t := client.EventType(e.opts.eventType) // the server's to check, as events list's
	o := e.opts
	if o.limit < 0 {
		return usagef("--limit must be 0 or more")
	}
	after, resumed, err := readCursor(o.cursorFile)
	if err != nil {
		return err
	}
	if !resumed {
		after = o.after
	}
	pos, from := newPosition(after), "after "+after
	// The cursor file's event was listed when it was written: a refusal of it is its purge.
	pos.listed = pos.listed || resumed
	if after == "" {
		// From now on: past the newest event listed.
		for ev, err := range e.site.ListEvents(ctx, client.ListEventsOptions{Type: t, Limit: 100}) {
			if err != nil {
				return ended(ctx, err)
			}
			pos.read(ev)
		}
		pos.listed = true
		from = "from now on"
		if err := writeCursor(o.cursorFile, pos.after); err != nil { // now, where a run again starts
			return err
		}
	}
	fmt.Fprintf(e.stderr, "Following the events of site %s %s. Ctrl-C stops.\n", o.site, from)
	wait, seen := time.Duration(o.interval), 0
	for {
		got, failed, purged := 0, false, false
		for ev, err := range e.site.ListEvents(ctx, client.ListEventsOptions{After: pos.after, Type: t, Limit: 100}) {
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				failed = true
				if purged = pos.purged(err); purged {
					fmt.Fprintf(e.stderr, "pyng-partner: event %s is no longer listed (events are kept 30 days); "+
						"reading on from the oldest event listed, past those already read\n", pos.after)
					pos.restart()
				} else if client.Temporary(err) {
					fmt.Fprintf(e.stderr, "pyng-partner: %v (trying again)\n", err)
				} else {
					return ended(ctx, err)
				}
				break
			}
			isNew := pos.read(ev)
			if isNew {
				if err := f(ev); err != nil {
					return err
				}
			}
			if err := writeCursor(o.cursorFile, pos.after); err != nil {
				return err
			}
			if !isNew {
				continue // read before the purge of the event the list was read after
			}
			got++
			if seen++; o.limit > 0 && seen >= o.limit {
				return nil
			}
		}
		if !failed {
			pos.listed = true
		}
		if purged {
			continue // read the list again at once, from its start
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

// readCursor reads the eventId kept in the cursor file, if there is one (no file, or an empty
// one, is none: a follower's first run).
func readCursor(file string) (after string, found bool, err error) {
	if file == "" {
		return "", false, nil
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("--cursor-file: %w", err)
	}
	after = strings.TrimSpace(string(b))
	return after, after != "", nil
}

// writeCursor keeps after in the cursor file (when there is one, and after is an event), whole or
// not at all: written beside it, then renamed over it.
func writeCursor(file, after string) error {
	if file == "" || after == "" {
		return nil
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(after+"\n"), 0o600); err != nil {
		return fmt.Errorf("--cursor-file: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("--cursor-file: %w", err)
	}
	return nil
}

// transactionSlack bounds how much earlier than an event another may be created and yet be
// listed after it. The list orders events by the transactions that wrote them, and an event's
// createdAt is its transaction's time, taken before the transaction is ordered; the server's
// transactions last seconds, far less than this.
const transactionSlack = 10 * time.Minute

// position is where a follower is in the events list: after the event it read last. The list
// keeps the events of the last 30 days and refuses a purged one's eventId as after (400
// invalid-field, target after), which a follower of a type that comes rarely, or of a site
// where nothing happens for a month, comes to. It then reads the list again from its oldest
// event: the events after the purged one are all there, and those still listed before it were
// created after it (else they would be purged too), so within transactionSlack of the newest
// read. position keeps the ids of the events read that lately, so that none is given twice.
// Following the list without the type, to move on with every event, would cost a rare type's
// follower the whole list and still meet the purge on a quiet site.
type position struct {
	after string
	// listed says that the list has answered after after: a refusal of it then is its purge,
	// not an eventId that never was (a mistaken --after, which ends the follower).
	listed bool
	newest client.Timestamp    // the latest createdAt read
	lately []readEvent         // the events read within transactionSlack of newest, first read first
	known  map[string]struct{} // their ids
}

// readEvent is an event a follower has read, as much of it as position keeps.
type readEvent struct {
	id        string
	createdAt client.Timestamp
}

func newPosition(after string) *position {
	return &position{after: after, listed: after == "", known: map[string]struct{}{}}
}

// read moves past ev and reports whether it is new: false for an event read before the purge of
// the one after which the list was read.
func (p *position) read(ev client.Event) bool {
	p.after = ev.EventID
	if _, ok := p.known[ev.EventID]; ok {
		return false
	}
	p.newest = max(p.newest, ev.CreatedAt)
	p.lately = append(p.lately, readEvent{ev.EventID, ev.CreatedAt})
	p.known[ev.EventID] = struct{}{}
	oldest := p.newest - client.Timestamp(transactionSlack.Milliseconds())
	for len(p.lately) > 0 && p.lately[0].createdAt < oldest {
		delete(p.known, p.lately[0].id)
		p.lately = p.lately[1:]
	}
	return true
}

// purged reports whether err is the list's refusal of after, an event it had listed.
func (p *position) purged(err error) bool {
	var apiErr *client.Error
	return p.listed && p.after != "" && errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusBadRequest &&
		apiErr.Code == client.CodeInvalidField && apiErr.Target == "after"
}

// restart reads the list again from its oldest event.
func (p *position) restart() {
	p.after = ""
}

// ended is nil when err is the end of ctx (Ctrl-C), else err.
func ended(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
