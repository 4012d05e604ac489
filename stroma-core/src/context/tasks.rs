//! The tasks a run started with [`spawn`](crate::spawn): they belong to the
//! run, so a run that is cancelled, times out or has its future dropped
//! aborts them; [`spawn_detached`](crate::spawn_detached) starts one that
//! outlives it.

use std::sync::{Arc, Mutex};

use tokio::task::AbortHandle;

use crate::context::Layer;

/// The abort handles of a run's tasks, kept in the run's own context layer.
/// Empty (and unallocated) in a run that starts none.
#[derive(Default)]
pub(crate) struct RunTasks {
    inner: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    handles: Vec<AbortHandle>,
    /// The run was stopped: a task registered from now on (by a task of
    /// the run on another thread) is aborted at once.
    stopped: bool,
}

impl RunTasks {
    /// Adds a task of the run.
    pub(crate) fn register(&self, handle: AbortHandle) {
        let mut registry = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if registry.stopped {
            handle.abort();
            return;
        }
        // Finished tasks are dropped before the list grows, so a long run
        // that starts many short tasks holds only the live ones.
        if registry.handles.len() == registry.handles.capacity() {
            registry.handles.retain(|task| !task.is_finished());
        }
        registry.handles.push(handle);
    }

    /// Aborts every task of the run still running, and any registered later.
    fn abort_all(&self) {
        let handles = {
            let mut registry = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            registry.stopped = true;
            std::mem::take(&mut registry.handles)
        };
        for task in handles {
            task.abort();
        }
    }
}

/// Held by the runner for the whole run: if the run does not end by itself
/// (it was cancelled, timed out, or its future was dropped), dropping this
/// aborts the run's tasks.
pub(crate) struct AbortTasksUnlessFinished {
    home: Arc<Layer>,
    finished: bool,
}

impl AbortTasksUnlessFinished {
    /// Watches the tasks of the run whose own layer is `home`.
    pub(crate) fn new(home: Arc<Layer>) -> Self {
        AbortTasksUnlessFinished {
            home,
            finished: false,
        }
    }

    /// The run ended by itself (completed, failed or interrupted): its
    /// tasks go on, their handles are their owners'.
    pub(crate) fn finished(&mut self) {
        self.finished = true;
    }
}

impl Drop for AbortTasksUnlessFinished {
    fn drop(&mut self) {
        if !self.finished {
            self.home.tasks().abort_all();
        }
    }
}
