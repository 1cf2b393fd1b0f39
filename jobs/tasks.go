package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
)

// Task is periodic work that a component other than billing provides (a rail's cut-off, say),
// run by the queue on its schedule: on one replica at a time, as the other periodic jobs.
type Task struct {
	// Name names the task; it is the periodic job's id, so it must be unique.
	Name string
	// Next is the task's next run after t.
	Next func(t time.Time) time.Time
	// Run does the work; it must be safe to repeat after a crash.
	Run func(ctx context.Context) error
}

// RunTask runs the task Name of the Config's Tasks.
type RunTask struct {
	Name string `json:"name"`
}

// Kind is the job's name in the queue.
func (RunTask) Kind() string { return "run_task" }

type runTaskWorker struct {
	river.WorkerDefaults[RunTask]
	tasks map[string]Task
}

// Work runs the task. A task this process does not have fails the job, logged and tried again
// (by whichever replica takes it), rather than being done unseen: the replica that inserted it has
// the task, and this one is configured otherwise (a setting missing, or an older version during a
// rolling upgrade), so that the task's work, the import of the bank's returns say, would be
// skipped at random.
func (w *runTaskWorker) Work(ctx context.Context, job *river.Job[RunTask]) error {
	t, ok := w.tasks[job.Args.Name]
	if !ok {
		return fmt.Errorf("task %s: this process does not have it: configure every replica alike (the BECS settings)", job.Args.Name)
	}
	if err := t.Run(ctx); err != nil {
		return fmt.Errorf("task %s: %w", t.Name, err)
	}
	return nil
}

// schedule is a Task's Next as River's schedule.
type schedule func(time.Time) time.Time

func (s schedule) Next(t time.Time) time.Time { return s(t) }

// addTasks registers the worker of the tasks and their periodic jobs.
func addTasks(workers *kindsOfWorkers, tasks []Task) []*river.PeriodicJob {
	byName := map[string]Task{}
	var periodic []*river.PeriodicJob
	var names []string
	for _, t := range tasks {
		byName[t.Name] = t
		names = append(names, t.Name)
		args := RunTask{Name: t.Name}
		periodic = append(periodic, river.NewPeriodicJob(schedule(t.Next),
			func() (river.JobArgs, *river.InsertOpts) { return args, &river.InsertOpts{MaxAttempts: 3} },
			&river.PeriodicJobOpts{ID: "task_" + t.Name}))
	}
	addWorker(workers, &runTaskWorker{tasks: byName}, names...)
	return periodic
}
