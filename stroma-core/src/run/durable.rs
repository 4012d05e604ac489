//! The runner's durable side: [`StromaRunner::run_durable`], the resumes,
//! and [`DurableRuns`], the listing of a store's runs.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::combinators::flow::Var;
use crate::durable::bounds::{Durable, ModelCodec, Saveable};
use crate::durable::interrupt::DurableError;
use crate::durable::journal::{Journal, Record};
use crate::durable::run::{DurableRun, DurableSetup};
use crate::durable::{StoredRun, fingerprint, first_difference};
use crate::engine::failure::NodeFailure;
use crate::node::{Node, Runnable};
use crate::run::future::RunFuture;
use crate::run::outcome::{RunError, RunResult};
use crate::run::run_id::RunId;
use crate::run::runner::{Durably, RunOptions, RunStart, StromaRunner};
use crate::store::{RunStatus, RunStore, StoreError};
use crate::tree::record::NodeStatus;
use crate::tree::shape::shape_of;
use crate::tree::trace::{Trace, TraceParts};

type Outcome<O, M> = Result<RunResult<O, M>, RunError>;

/// How to resume a run: the answers to its questions, and the per-run
/// variables it was started with. `M` is the run's model type.
///
/// ```
/// use stroma_core::ResumeOptions;
///
/// let options = ResumeOptions::new().answer_to("review[0].approve:0", true);
/// # let _ = options;
/// ```
pub struct ResumeOptions<M = ()> {
    /// Each as encoded, or why it cannot be saved: the resume fails then.
    pub(crate) answer: Option<Result<Value, String>>,
    pub(crate) answers: Vec<(String, Result<Value, String>)>,
    pub(crate) vars: Vec<Var>,
    pub(crate) model: PhantomData<fn() -> M>,
}

impl ResumeOptions {
    /// Resume as saved, with the model `()`.
    pub fn new() -> Self {
        ResumeOptions {
            answer: None,
            answers: Vec::new(),
            vars: Vec::new(),
            model: PhantomData,
        }
    }
}

impl Default for ResumeOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> ResumeOptions<M> {
    /// Resume a run whose model is an `N`.
    pub fn model<N>(self) -> ResumeOptions<N> {
        ResumeOptions {
            answer: self.answer,
            answers: self.answers,
            vars: self.vars,
            model: PhantomData,
        }
    }

    /// Answers the one pending question with `answer`.
    pub fn answer(mut self, answer: impl Serialize) -> Self {
        self.answer = Some(crate::durable::bounds::encode(&answer));
        self
    }

    /// Answers the pending question `id` (see [`Interrupt::id`](crate::Interrupt::id)) with `answer`.
    pub fn answer_to(mut self, id: impl Into<String>, answer: impl Serialize) -> Self {
        self.answers
            .push((id.into(), crate::durable::bounds::encode(&answer)));
        self
    }

    /// Declares the per-run variable `name` again, as
    /// [`RunOptions::var`](crate::RunOptions::var) did when the run started.
    pub fn var<T: Serialize + Send + Sync + 'static>(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: T,
    ) -> Self {
        self.vars.push(Var::new(name, value));
        self
    }
}

impl StromaRunner {
    /// Runs `pipeline` on `input` durably, with the model `()`: after every
    /// node, its completion is saved in the runner's store
    /// ([`with_store`](Self::with_store)), so the run can be
    /// [`resume`](Self::resume)d if it fails, crashes or stops to ask a
    /// person. The run's id ([`RunResult::run_id`], [`RunError::run_id`])
    /// names it in the store.
    ///
    /// Every node's output, the input and the model must be
    /// `Serialize + DeserializeOwned`; a pipeline whose are not does not
    /// compile here, naming the type and the node (it still runs with
    /// [`run`](Self::run)).
    ///
    /// ```
    /// use stroma::prelude::*;
    ///
    /// #[node]
    /// async fn double(x: u32) -> u32 { x * 2 }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let runner = StromaRunner::quick().with_store(MemoryStore::new());
    /// let p = pipeline![double, double];
    /// let done = runner.run_durable(&p, 3).await?;
    /// assert_eq!(done.final_state, 12);
    /// // Resuming a completed run gives its saved result; nothing runs again.
    /// let again = runner.resume(&p, &done.run_id.to_string()).await?;
    /// assert_eq!(again.final_state, 12);
    /// # Ok::<(), RunError>(())
    /// # }).unwrap();
    /// ```
    // The public entry points are plain `fn`s returning a named
    // `RunFuture`: a bound a pipeline does not meet is reported once, on
    // the argument.
    pub fn run_durable<'a, P>(
        &'a self,
        pipeline: &'a P,
        input: P::Input,
    ) -> RunFuture<'a, P::Output>
    where
        P: Runnable<()>,
        P: Durable,
        P::Input: Saveable,
    {
        RunFuture::new(|| self.durable_start(pipeline, input, RunOptions::new()))
    }

    /// [`run_durable`](Self::run_durable) with per-run options: the model
    /// (saved with the run), the execution context, variables.
    pub fn run_durable_with<'a, P, M>(
        &'a self,
        pipeline: &'a P,
        input: P::Input,
        options: RunOptions<M>,
    ) -> RunFuture<'a, P::Output, M>
    where
        P: Runnable<M>,
        P: Durable,
        P::Input: Saveable,
        M: Saveable,
    {
        RunFuture::new(|| self.durable_start(pipeline, input, options))
    }

    async fn durable_start<P, M>(
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

    /// Resumes the durable run `run_id` (model `()`): a failed run runs
    /// again from the node that failed, a crashed one from the node that
    /// was running, an interrupted one asks again (answer with
    /// [`resume_with`](Self::resume_with)); nodes saved as completed are not
    /// run again. A completed run gives back its saved result.
    ///
    /// Errors, with nothing run: the pipeline's shape differs from the
    /// saved one (naming the first node that differs), another worker holds
    /// the run, or the store fails or holds something it cannot read.
    pub fn resume<'a, P>(&'a self, pipeline: &'a P, run_id: &'a str) -> RunFuture<'a, P::Output>
    where
        P: Runnable<()>,
        P: Durable,
        P::Input: Saveable,
    {
        RunFuture::new(|| self.durable_resume(pipeline, run_id, ResumeOptions::new()))
    }

    /// Resumes the interrupted run `run_id` (model `()`) with `answer` to
    /// its one pending question; the node that asked runs again, and its
    /// [`Context::interrupt`](crate::Context::interrupt) returns the answer.
    /// With several questions pending, answer each by id
    /// ([`ResumeOptions::answer_to`]); this is then an error listing them.
    pub fn resume_with<'a, P>(
        &'a self,
        pipeline: &'a P,
        run_id: &'a str,
        answer: impl serde::Serialize,
    ) -> RunFuture<'a, P::Output>
    where
        P: Runnable<()>,
        P: Durable,
        P::Input: Saveable,
    {
        RunFuture::new(|| {
            self.durable_resume(pipeline, run_id, ResumeOptions::new().answer(answer))
        })
    }

    /// Resumes the durable run `run_id` with `options`: answers by id, the
    /// model type, per-run variables.
    pub fn resume_with_options<'a, P, M>(
        &'a self,
        pipeline: &'a P,
        run_id: &'a str,
        options: ResumeOptions<M>,
    ) -> RunFuture<'a, P::Output, M>
    where
        P: Runnable<M>,
        P: Durable,
        P::Input: Saveable,
        M: Saveable,
    {
        RunFuture::new(|| self.durable_resume(pipeline, run_id, options))
    }

    async fn durable_resume<P, M>(
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

    /// Starts a new durable run (a new id, linked to `run_id` as its
    /// parent) from the checkpoint after the node at `path` completed in
    /// the run `run_id`: the nodes up to it give their saved outputs, the
    /// nodes after it run again. For replaying a run with a node fixed.
    pub fn resume_from<'a, P>(
        &'a self,
        pipeline: &'a P,
        run_id: &'a str,
        path: &'a str,
    ) -> RunFuture<'a, P::Output>
    where
        P: Runnable<()>,
        P: Durable,
        P::Input: Saveable,
    {
        RunFuture::new(|| self.durable_fork(pipeline, run_id, path, ResumeOptions::new()))
    }

    /// [`resume_from`](Self::resume_from) with `options` (the model type, variables).
    pub fn resume_from_with_options<'a, P, M>(
        &'a self,
        pipeline: &'a P,
        run_id: &'a str,
        path: &'a str,
        options: ResumeOptions<M>,
    ) -> RunFuture<'a, P::Output, M>
    where
        P: Runnable<M>,
        P: Durable,
        P::Input: Saveable,
        M: Saveable,
    {
        RunFuture::new(|| self.durable_fork(pipeline, run_id, path, options))
    }

    async fn durable_fork<P, M>(
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
