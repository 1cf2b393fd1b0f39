package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/pyng/receivables/billing"
	"github.com/pyng/receivables/jobs"
	"github.com/pyng/receivables/rail"
	"github.com/pyng/receivables/rail/becs"
	"github.com/pyng/receivables/rail/becs/aba"
	"github.com/pyng/receivables/storage"
)

// stopCancelledJobs is how long a stop waits, once the jobs still running are cancelled, for them
// to end and their state to be recorded.
const stopCancelledJobs = 2 * time.Second

// StartJobs starts working the job queue kept in db with service, and the periodic tasks, and
// looking for due webhook deliveries; it returns the function that stops them (waiting for running
// jobs to finish or ctx to end).
func StartJobs(ctx context.Context, db storage.Database, service *billing.Service, logger *slog.Logger, cfg jobs.Config, tasks ...jobs.Task) (stop func(context.Context) error, err error) {
	var stopping atomic.Bool
	cfg.StoppingFunc = stopping.Load
	client, err := db.NewJobClient(jobs.NewConfig(service, logger, cfg, tasks...))
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return nil, fmt.Errorf("jobs: start: %w", err)
	}
	scheduling, stopScheduling := context.WithCancel(context.WithoutCancel(ctx))
	scheduled := make(chan struct{})
	go func() {
		defer close(scheduled)
		jobs.ScheduleDeliveries(scheduling, service, logger, cfg)
	}()
	stop = func(ctx context.Context) error {
		stopping.Store(true) // the webhook runs send no more: what they leave is due for the next start
		stopScheduling()
		<-scheduled
		err := client.Stop(ctx)
		if ctx.Err() == nil {
			return err
		}
		// Jobs still run at the grace period's end: cancelled, each ends now and is retried (a
		// job cut short is safe), rather than left claimed, and running, as the process exits.
		logger.Warn("jobs still running at the end of the shutdown's grace period are cancelled; they are retried")
		cancelling, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopCancelledJobs)
		defer cancel()
		return client.StopAndCancel(cancelling)
	}
	if cfg.SendEmailFunc != nil {
		if n, err := wakeWaitingEmails(ctx, client); err != nil {
			logger.Warn("the emails that waited for an SMTP server are sent within minutes, not at once", "err", err)
		} else if n > 0 {
			logger.Info("sending the emails that waited for an SMTP server", "emails", n)
		}
	}
	return stop, nil
}

// wakeWaitingEmails makes the email jobs that wait in the queue because no SMTP server was
// configured when they were tried (snoozed for a few minutes: scheduled) available at once, now
// that one is, and returns how many there were.
func wakeWaitingEmails(ctx context.Context, client storage.JobClient) (int, error) {
	params := river.NewJobListParams().Kinds(billing.SendEmailJob{}.Kind()).States(rivertype.JobStateScheduled).First(1000)
	n := 0
	for {
		res, err := client.JobList(ctx, params)
		if err != nil {
			return n, err
		}
		for _, j := range res.Jobs {
			if _, err := client.JobRetry(ctx, j.ID); err != nil {
				return n, err
			}
			n++
		}
		if len(res.Jobs) < 1000 {
			return n, nil
		}
		params = params.After(river.JobListCursorFromJob(res.Jobs[len(res.Jobs)-1]))
	}
}

// BECSTasks are the BECS rail's periodic tasks: the cut-off, on the schedule of the settings,
// which cuts a file of each site's queued debits and delivers it; the delivery, every minute,
// which makes up a cut-off that passed without its cut, and delivers the files a failed delivery left (to an outbox directory, where the operator
// lodges them, or to the bank's SFTP server, which lodges them: their rows succeed; or to both,
// the outbox keeping a copy of what the server lodged); with an SFTP returns directory, the
// import of the returns files found there, every minute; and, every minute, the match of the
// returned items kept unmatched whose rows succeeded since (MatchKeptBECSReturns): those imported
// before their file was recorded lodged, or before its rows' record (a batch's step, when the
// record that follows a lodgement failed).
func BECSTasks(r *becs.Rail, service *billing.Service, clock billing.Clock, cfg Config, logger *slog.Logger) ([]jobs.Task, error) {
	loc, err := time.LoadLocation(cfg.BECSTimezone)
	if err != nil {
		return nil, err
	}
	schedule, err := becs.ParseSchedule(cfg.BECSCutoffs, loc)
	if err != nil {
		return nil, err
	}
	holidays, err := becs.ParseHolidays(cfg.BECSHolidays)
	if err != nil {
		return nil, err
	}
	calendar := becs.Calendar{Location: loc, Holidays: holidays}
	dest, server, err := becsDestination(cfg)
	if err != nil {
		return nil, err
	}
	var warnedMu sync.Mutex
	warnedExpired := map[string]bool{} // once a process: an expired file is listed at every delivery
	deliver := func(ctx context.Context) error {
		if dest == nil {
			return nil
		}
		files, expired, err := r.Deliver(ctx, dest)
		warnedMu.Lock()
		for _, f := range expired {
			if !warnedExpired[f.ID] {
				warnedExpired[f.ID] = true
				msg := "BECS file not delivered: too late to lodge, its rows fail expired; do not lodge it with the bank"
				if !f.PublishedAt.IsZero() {
					msg = "BECS file removed from the outbox: not lodged by its lodge-by time, its rows fail expired; do not lodge it with the bank"
				}
				logger.Warn(msg, "file", f.ID, "site", f.SiteID, "rows", f.Rows, "total", f.Total, "lodgeBy", f.LodgeBy(), "to", dest.String())
			}
		}
		warnedMu.Unlock()
		lodged := "BECS file lodged with the bank by SFTP"
		if cfg.BECSOutbox != "" {
			lodged += ", a copy written to the outbox for the record: do not lodge the copy"
		}
		for _, f := range files {
			if dest.Lodges() {
				logger.Info(lodged, "file", f.ID, "site", f.SiteID, "rows", f.Rows, "total", f.Total, "to", dest.String())
				continue
			}
			logger.Info("BECS file delivered to the outbox; lodge it with the bank, then run pyng admin becs files lodged",
				"file", f.ID, "site", f.SiteID, "rows", f.Rows, "total", f.Total, "dir", dest.String())
		}
		if dest.Lodges() && service != nil {
			for _, f := range files {
				keys, kerr := r.Keys(ctx, f.ID)
				if kerr == nil {
					_, kerr = service.RecordRailOutcomes(ctx, rail.BECS, keys)
				}
				err = errors.Join(err, kerr) // else its batches record them at their next step
			}
		}
		removed, rerr := r.RemoveErasedCopies(ctx, dest)
		if removed > 0 {
			logger.Info("BECS files' copies removed from the outbox: their bank details' retention ended", "files", removed, "dir", dest.String())
		}
		return errors.Join(err, rerr)
	}
	cut := func(ctx context.Context) error {
		files, err := r.Cut(ctx, calendar)
		if len(files) > 0 && !calendar.KnowsHolidaysAfter(clock.Now()) {
			logger.Warn("BECS holidays (PYNG_BECS_HOLIDAYS) name no day in the year ahead: a file cut on a public holiday is dated that day, " +
				"and processed by the bank on its next business day; list the bank's holidays")
		}
		for _, f := range files {
			logger.Info("BECS file cut", "file", f.ID, "site", f.SiteID, "rows", f.Rows, "total", f.Total, "checksum", f.Checksum)
			if dest == nil {
				logger.Warn("BECS file cut and delivered nowhere: no outbox (PYNG_BECS_OUTBOX) nor SFTP server (PYNG_BECS_SFTP_URL) is configured; "+
					"lodge it by hand (pyng admin becs files get, then files lodged) before its lodge-by time, or its rows fail expired",
					"file", f.ID, "site", f.SiteID, "lodgeBy", f.LodgeBy())
			}
		}
		return errors.Join(err, deliver(ctx))
	}
	// The delivery task also makes up a cut-off missed: River keeps the schedule in memory and
	// does not run at its start a periodic job whose time passed while no replica ran (a deploy at
	// 15:00), nor again a cut that failed its attempts; the debits would wait for the next
	// cut-off, their deadline nearer by hours, and shorten their whole file's time to be lodged.
	deliverOrMakeUp := func(ctx context.Context) error {
		overdue, err := r.CutOverdue(ctx, schedule)
		if err != nil {
			return err
		}
		if overdue {
			logger.Warn("BECS cut-off passed with debits still queued (no replica ran at it, or its cut failed): cutting now")
			return cut(ctx)
		}
		return deliver(ctx)
	}
	tasks := []jobs.Task{
		{Name: "becs_cut", Next: schedule.Next, Run: cut},
		{Name: "becs_deliver", Next: everyMinute, Run: deliverOrMakeUp},
	}
	if server != nil && cfg.BECSSFTPReturnsDir != "" && service != nil {
		tasks = append(tasks, jobs.Task{Name: "becs_returns", Next: everyMinute, Run: func(ctx context.Context) error {
			return server.FetchReturns(ctx, func(f becs.ReturnsFile) (bool, error) {
				report, err := ImportBECSReturns(ctx, r, service, clock, f.Content)
				if errors.Is(err, aba.ErrIncomplete) {
					if !f.Abandoned { // FetchReturns leaves it in place, for an upload that stalled to resume
						logger.Warn("BECS returns file incomplete, as one still being uploaded is: left in place, read again every minute, "+
							"and rejected if it stays unchanged for PYNG_BECS_SFTP_RETURNS_INCOMPLETE_WAIT", "file", f.Name, "size", len(f.Content),
							"unchanged", f.Unchanged.Round(time.Second), "err", err)
						return false, err
					}
					err = fmt.Errorf("incomplete, and unchanged for %v: %w", f.Unchanged.Round(time.Second), err)
				}
				if rejected := errors.As(err, new(aba.Errors)) || errors.Is(err, becs.ErrNotReturns); rejected {
					logger.Error("BECS returns file rejected, nothing imported; moved to rejected/", "file", f.Name, "err", err)
					return true, nil
				}
				if err != nil {
					return false, err
				}
				logger.Info("BECS returns file imported; moved to imported/", "file", f.Name, "items", report.Items,
					"returned", report.Returned, "alreadyReturned", report.AlreadyReturned, "unmatched", len(report.Unmatched), "revoked", report.Revoked)
				for _, it := range report.Unmatched {
					logger.Warn("BECS returned item matches no row; kept (pyng admin becs returns unmatched)", "file", f.Name,
						"line", it.Line, "lodgementReference", it.Return.LodgementReference, "amount", it.Return.Amount, "problem", it.Problem)
				}
				return false, nil
			})
		}})
	}
	if service != nil {
		tasks = append(tasks, jobs.Task{Name: "becs_rematch_returns", Next: everyMinute, Run: func(ctx context.Context) error {
			report, err := MatchKeptBECSReturns(ctx, r, service, clock)
			if matched := report.Returned + report.AlreadyReturned; matched > 0 {
				logger.Info("BECS returned items kept unmatched match their rows now (recorded succeeded since): returns recorded, items no longer kept",
					"items", matched, "returned", report.Returned, "alreadyReturned", report.AlreadyReturned, "revoked", report.Revoked)
			}
			return err
		}})
	}
	return tasks, nil
}

func everyMinute(t time.Time) time.Time { return t.Add(time.Minute) }

// becsDestination is where the BECS rail delivers its files: the outbox directory, the bank's
// SFTP server (also returned, for its returns directory), both (each file written to the outbox,
// the operator's copy, then uploaded to the server, which lodges it), or nowhere (nil).
func becsDestination(cfg Config) (becs.Destination, *becs.SFTP, error) {
	var dests becs.Destinations
	if cfg.BECSOutbox != "" {
		dests = append(dests, becs.Dir(cfg.BECSOutbox))
	}
	var server *becs.SFTP
	if cfg.BECSSFTPURL != "" {
		var err error
		server, err = becs.OpenSFTP(cfg.sftpConfig())
		if err != nil {
			return nil, nil, err
		}
		dests = append(dests, server)
	}
	switch len(dests) {
	case 0:
		return nil, nil, nil
	case 1:
		return dests[0], server, nil
	}
	return dests, server, nil
}
