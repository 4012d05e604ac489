//! The runner's durable side: the work behind [`StromaRunner::run_durable`]
//! and the resumes (their entry points stand in `run/runner.rs`, beside the
//! runner), and [`DurableRuns`], the listing of a store's runs.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::combinators::flow::Var;
use crate::durable::bounds::{Durable, ModelCodec, Saveable};
use crate::durable::interrupt::DurableError;
use crate::durable::journal::{Journal, Record};
use crate::durable::run::{DurableRun, DurableSetup};
use crate::durable::{StoredRun, fingerprint, first_difference};
use crate::engine::failure::NodeFailure;
use crate::node::{Node, Runnable};
use crate::run::outcome::{RunError, RunResult};
use crate::run::resume::ResumeOptions;
use crate::run::run_id::RunId;
use crate::run::runner::{Durably, RunOptions, RunStart, StromaRunner};
use crate::store::{RunStatus, RunStore, StoreError};
use crate::tree::record::NodeStatus;
use crate::tree::shape::shape_of;
use crate::tree::trace::{Trace, TraceParts};

type Outcome<O, M> = Result<RunResult<O, M>, RunError>;

impl StromaRunner {
    pub(crate) async fn durable_start<P, M>(
        &self,
        pipeline: &P,
        input: P::Input,
        mut options: RunOptions<M>,
    ) -> Outcome<P::Output, M>
    where
        P: Runnable<M> + Durable,
        P::Input: Saveable,
        M: Saveable,
    {
        let run_id = RunId::new();
        let stop = |err: DurableError| RunError::before_run(pipeline, run_id, err);
        let store = self.run_store().map_err(stop)?;
        let listing = shape_of(pipeline).listing();
        let fingerprint = fingerprint(&listing);
        let id = run_id.to_text();
        let execution = self.execution_for(run_id, options.execution.as_ref());
        let start = Record::Start {
            pipeline: pipeline.name().to_owned(),
            // Held to the depth a checkpoint can be read back at, as outputs are.
            input: crate::durable::bounds::encode(&input)
                .map_err(|reason| stop(encode("the input", reason)))?,
            model: crate::durable::bounds::encode(&options.model)
                .map_err(|reason| stop(encode("the model", reason)))?,
            execution: serde_json::to_value(&execution).unwrap_or(Value::Null),
            shape: listing,
            vars: options
                .vars
                .iter()
                .filter_map(|var| Some((var.name.to_string(), var.json.clone().ok()?)))
                .collect(),
        };
        options.execution = Some(execution);
        let durable = self.durable_run::<M>(&store, id, fingerprint, None, Journal::default());
        durable
            .begin(None, &holder(), vec![start])
            .await
            .map_err(stop)?;
        // Dropped with this future: a cancelled run stops renewing its lease
        // even if a node kept its context somewhere.
        let _beat = StopsHeartbeat(Arc::clone(&durable));
        let outcome = self
            .run_reporting(
                pipeline,
                input,
                options,
                RunStart {
                    durable: Some((run_id, Arc::clone(&durable))),
                    ..RunStart::default()
                },
                Durably,
            )
            .await;
        finish(&durable, outcome, pipeline.name()).await
    }

    pub(crate) async fn durable_resume<P, M>(
        &self,
        pipeline: &P,
        run_id: &str,
        options: ResumeOptions<M>,
    ) -> Outcome<P::Output, M>
    where
        P: Runnable<M> + Durable,
        P::Input: Saveable,
        M: Saveable,
    {
        let id = RunId::parse(run_id).unwrap_or_default();
        let stop = |err: DurableError| RunError::before_run(pipeline, id, err);
        let store = self.run_store().map_err(stop)?;
        let (mut journal, mut status) = read_journal(&store, run_id).await.map_err(stop)?;
        let mut lease = None;
        if status != RunStatus::Completed {
            // The lease first, then the journal read again under it: another
            // worker may have moved the run on between the first read and now.
            let held = self
                .acquire(&store, run_id)
                .await
                .map_err(|e| stop(e.into()))?;
            match read_journal(&store, run_id).await {
                Ok((fresh, now)) => (journal, status) = (fresh, now),
                Err(err) => {
                    let _ = store.release(&held).await;
                    return Err(stop(err));
                }
            }
            if status == RunStatus::Completed {
                let _ = store.release(&held).await;
            } else {
                lease = Some(held);
            }
        }
        // Whatever stops the resume from here gives the lease back.
        let release = |err: DurableError| {
            let store = Arc::clone(&store);
            let held = lease.clone();
            async move {
                if let Some(held) = held {
                    let _ = store.release(&held).await;
                }
                stop(err)
            }
        };
        let Some(id) = RunId::parse(run_id) else {
            let err = decode("the run id", format!("`{run_id}` is not a run id"));
            return Err(release(err).await);
        };
        let listing = shape_of(pipeline).listing();
        let fingerprint = fingerprint(&listing);
        let Some(start) = journal.start.clone() else {
            let err = DurableError::NoCheckpoint {
                run_id: run_id.to_owned(),
            };
            return Err(release(err).await);
        };
        if let Some((saved, given)) = first_difference(&start.shape, &listing) {
            return Err(release(DurableError::FingerprintMismatch { saved, given }).await);
        }
        let answers = match answers_for(&journal, status, &options) {
            Ok(answers) => answers,
            Err(err) => return Err(release(err).await),
        };
        let input = match serde_json::from_value::<P::Input>(start.input.clone()) {
            Ok(input) => input,
            Err(e) => return Err(release(decode("the input", e)).await),
        };
        let model = match serde_json::from_value::<M>(start.model.clone()) {
            Ok(model) => model,
            Err(e) => return Err(release(decode("the model", e)).await),
        };
        let mut run_options = RunOptions::new().model(model);
        run_options.vars = options.vars;
        // A per-run variable not given again comes back as its saved JSON:
        // templates read it as before; a typed read needs it given again.
        for (name, value) in &start.vars {
            if !run_options.vars.iter().any(|var| var.name == name.as_str()) {
                run_options.vars.push(Var::new(name.clone(), value.clone()));
            }
        }
        if let Ok(execution) = serde_json::from_value(start.execution.clone()) {
            run_options.execution = Some(execution);
        }
        let durable = self.durable_run::<M>(&store, run_id.to_owned(), fingerprint, lease, journal);
        let _beat = StopsHeartbeat(Arc::clone(&durable));
        if durable.writes() && !answers.is_empty() {
            durable.give_answers(&answers);
            let records = answers
                .into_iter()
                .map(|(id, value)| Record::Answer { id, value })
                .collect();
            if let Err(err) = durable.append(records, RunStatus::Running).await {
                let _ = durable.close().await;
                return Err(stop(err));
            }
        }
        let outcome = self
            .run_reporting(
                pipeline,
                input,
                run_options,
                RunStart {
                    durable: Some((id, Arc::clone(&durable))),
                    ..RunStart::default()
                },
                Durably,
            )
            .await;
        if !durable.writes() {
            return outcome;
        }
        finish(&durable, outcome, pipeline.name()).await
    }

    pub(crate) async fn durable_fork<P, M>(
        &self,
        pipeline: &P,
        run_id: &str,
        path: &str,
        options: ResumeOptions<M>,
    ) -> Outcome<P::Output, M>
    where
        P: Runnable<M> + Durable,
        P::Input: Saveable,
        M: Saveable,
    {
        let new_id = RunId::new();
        let stop = |err: DurableError| RunError::before_run(pipeline, new_id, err);
        let store = self.run_store().map_err(stop)?;
        let (journal, _) = read_journal(&store, run_id).await.map_err(stop)?;
        let records = journal.until(path).ok_or_else(|| {
            stop(DurableError::NoSuchNode {
                path: path.to_owned(),
                completed: journal.completed_paths(),
            })
        })?;
        let listing = shape_of(pipeline).listing();
        let fingerprint = fingerprint(&listing);
        let start = journal.start.clone().ok_or_else(|| {
            stop(DurableError::NoCheckpoint {
                run_id: run_id.to_owned(),
            })
        })?;
        if let Some((saved, given)) = first_difference(&start.shape, &listing) {
            return Err(stop(DurableError::FingerprintMismatch { saved, given }));
        }
        let id = new_id.to_text();
        let mut copied = Journal::default();
        for record in records.iter().cloned() {
            copied.apply(record);
        }
        let durable = self.durable_run::<M>(&store, id.clone(), fingerprint, None, copied);
        if let Err(err) = durable.begin(Some(run_id), &holder(), records).await {
            let _ = durable.close().await;
            return Err(stop(err));
        }
        // The copied run resumes like any other.
        let _ = durable.close().await;
        self.durable_resume(pipeline, &id, options).await
    }

    /// The runs of the runner's store: listing by status, with what each
    /// completed and what it asks. See [`DurableRuns`].
    pub fn store(&self) -> DurableRuns<'_> {
        DurableRuns { runner: self }
    }

    fn run_store(&self) -> Result<Arc<dyn RunStore>, DurableError> {
        self.config().store.clone().ok_or(DurableError::NoStore)
    }

    async fn acquire(
        &self,
        store: &Arc<dyn RunStore>,
        run_id: &str,
    ) -> Result<crate::store::Lease, StoreError> {
        let holder = format!("process {}", std::process::id());
        store
            .acquire(run_id, &holder, self.config().lease_ttl)
            .await
    }

    fn durable_run<M: Saveable>(
        &self,
        store: &Arc<dyn RunStore>,
        run_id: String,
        fingerprint: String,
        lease: Option<crate::store::Lease>,
        journal: Journal,
    ) -> Arc<DurableRun> {
        let run = Arc::new(DurableRun::new(DurableSetup {
            run_id,
            store: Arc::clone(store),
            fingerprint,
            mode: self.config().durability,
            ttl: self.config().lease_ttl,
            lease,
            journal,
            codec: ModelCodec::<M>::new(),
        }));
        run.keep_lease_alive();
        run
    }
}

/// Stops a durable run's lease heartbeat when dropped.
struct StopsHeartbeat(Arc<DurableRun>);

impl Drop for StopsHeartbeat {
    fn drop(&mut self) {
        self.0.stop_heartbeat();
    }
}

/// Who holds the leases this process takes.
fn holder() -> String {
    format!("process {}", std::process::id())
}

fn encode(what: &str, reason: impl std::fmt::Display) -> DurableError {
    DurableError::Encode {
        what: what.to_owned(),
        reason: reason.to_string(),
    }
}

fn decode(what: &str, reason: impl std::fmt::Display) -> DurableError {
    DurableError::Decode {
        what: what.to_owned(),
        reason: reason.to_string(),
    }
}

/// The run's journal and status, read from the store.
async fn read_journal(
    store: &Arc<dyn RunStore>,
    run_id: &str,
) -> Result<(Journal, RunStatus), DurableError> {
    let checkpoints = store.checkpoints(run_id).await?;
    let Some(last) = checkpoints.last() else {
        let known = store.list(None).await?.iter().any(|r| r.run_id == run_id);
        return Err(if known {
            DurableError::NoCheckpoint {
                run_id: run_id.to_owned(),
            }
        } else {
            StoreError::unknown_run("resume", run_id).into()
        });
    };
    let status = last.status;
    Ok((Journal::read(run_id, &checkpoints)?, status))
}

/// The answers `options` gives, by id, checked against what the run asks.
fn answers_for<M>(
    journal: &Journal,
    status: RunStatus,
    options: &ResumeOptions<M>,
) -> Result<Vec<(String, Value)>, DurableError> {
    let pending: Vec<String> = match (&journal.end, status) {
        (Some(end), RunStatus::Interrupted) => {
            end.interrupts.iter().map(|i| i.id.clone()).collect()
        }
        _ => Vec::new(),
    };
    let mut answers = options.answers.clone();
    if let Some(answer) = &options.answer {
        match pending.as_slice() {
            [one] => answers.push((one.clone(), answer.clone())),
            [] => return Err(DurableError::NotInterrupted { status }),
            _ => return Err(DurableError::SeveralPending { pending }),
        }
    }
    if let Some((id, _)) = answers.iter().find(|(id, _)| !pending.contains(id)) {
        return Err(DurableError::NotPending {
            id: id.clone(),
            pending,
        });
    }
    answers
        .into_iter()
        .map(|(id, answer)| match answer {
            Ok(value) => Ok((id, value)),
            Err(reason) => Err(DurableError::Encode {
                what: format!("the answer to `{id}`"),
                reason,
            }),
        })
        .collect()
}

/// Saves how the run ended (completed, failed, or interrupted with its
/// questions) and gives its lease up. A run whose end cannot be saved is
/// reported as failed: the caller must not believe it saved.
async fn finish<O, M: Send + 'static>(
    durable: &DurableRun,
    outcome: Outcome<O, M>,
    pipeline: &'static str,
) -> Outcome<O, M> {
    let (records, status) = match &outcome {
        Ok(_) => (
            vec![Record::End {
                error: None,
                interrupts: Vec::new(),
            }],
            RunStatus::Completed,
        ),
        Err(err) => {
            let interrupted = err.interrupted();
            let mut records: Vec<Record> = interrupted
                .iter()
                .filter(|i| i.expected_type().is_some())
                .map(|i| Record::Rejected {
                    id: i.id().to_owned(),
                })
                .collect();
            let status = if interrupted.is_empty() {
                RunStatus::Failed
            } else {
                RunStatus::Interrupted
            };
            records.push(Record::End {
                error: Some(err.to_string()),
                interrupts: err.interrupts(),
            });
            (records, status)
        }
    };
    match durable.end(records, status).await {
        Ok(()) => outcome,
        Err(err) => match outcome {
            Ok(result) => Err(result.into_error(NodeFailure::run_stopped(pipeline, Box::new(err)))),
            Err(run_error) => {
                tracing::error!(error = %err, "a durable run's end could not be saved");
                Err(run_error)
            }
        },
    }
}

/// The runs of a runner's store, as [`StromaRunner::store`] gives them.
pub struct DurableRuns<'a> {
    runner: &'a StromaRunner,
}

impl DurableRuns<'_> {
    /// The store itself, for pruning, deleting and leases.
    pub fn raw(&self) -> Result<Arc<dyn RunStore>, DurableError> {
        self.runner.run_store()
    }

    /// Every run (with `status`, if given), most recently updated first,
    /// each with what completed, what it asks and its error. A run whose
    /// process died while it ran is listed as `Running`.
    pub async fn list(&self, status: Option<RunStatus>) -> Result<Vec<StoredRun>, DurableError> {
        let store = self.runner.run_store()?;
        let mut out = Vec::new();
        for summary in store.list(status).await? {
            out.push(describe(&store, summary).await?);
        }
        Ok(out)
    }

    /// The run `run_id`, if the store has it.
    pub async fn get(&self, run_id: &str) -> Result<Option<StoredRun>, DurableError> {
        let store = self.runner.run_store()?;
        let summary = store
            .list(None)
            .await?
            .into_iter()
            .find(|r| r.run_id == run_id);
        match summary {
            Some(summary) => Ok(Some(describe(&store, summary).await?)),
            None => Ok(None),
        }
    }

    /// Deletes every run (with `status`, if given) not updated for
    /// `older_than`, except runs being driven; returns how many.
    pub async fn prune(
        &self,
        older_than: Duration,
        status: Option<RunStatus>,
    ) -> Result<usize, DurableError> {
        Ok(self.runner.run_store()?.prune(older_than, status).await?)
    }
}

async fn describe(
    store: &Arc<dyn RunStore>,
    summary: crate::store::RunSummary,
) -> Result<StoredRun, DurableError> {
    let checkpoints = store.checkpoints(&summary.run_id).await?;
    let journal = Journal::read(&summary.run_id, &checkpoints)?;
    let end = journal.end.clone().unwrap_or_default();
    let interrupted = summary.status == RunStatus::Interrupted;
    Ok(StoredRun {
        pipeline: journal
            .start
            .as_ref()
            .map(|s| s.pipeline.clone())
            .unwrap_or_default(),
        completed: journal.completed_paths(),
        attempts: journal.attempts_begun(),
        interrupts: if interrupted {
            end.interrupts
        } else {
            Vec::new()
        },
        error: if summary.status == RunStatus::Failed || interrupted {
            end.error
        } else {
            None
        },
        summary,
    })
}

impl RunError {
    /// A run that stopped before any node ran: `cause` says why.
    pub(crate) fn before_run<P: Node>(
        pipeline: &P,
        run_id: RunId,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        let trace = Trace::new(
            pipeline,
            TraceParts {
                shape: None,
                entries: Vec::new(),
                frames: Vec::new(),
                records_on: false,
                results_on: false,
                status: NodeStatus::Failed,
                duration: None,
            },
        );
        RunError::new(
            NodeFailure::run_stopped(pipeline.name(), Box::new(cause)),
            run_id,
            trace,
            crate::context::Context::new(),
            (),
        )
    }
}

impl<O, M: Send + 'static> RunResult<O, M> {
    /// This finished run, reported as failed with `failure`.
    pub(crate) fn into_error(self, failure: NodeFailure) -> RunError {
        RunError::new(failure, self.run_id, self.trace, self.context, self.model)
    }
}
