//! [`DurableRun`]: what a durable run carries while it runs: its store and
//! lease, the journal it replays, and the writer of its checkpoints.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::bounds::ModelCodec;
use super::interrupt::DurableError;
use super::journal::{Journal, NodeDone, Record, state_of};
use crate::model::pipeline_context::HumanInteraction;
use crate::store::{Checkpoint, Lease, RunStatus, RunStore};

/// When a durable run's checkpoints are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Each node's checkpoint is committed before the next node starts: a
    /// crash loses at most the node that was running. The default.
    #[default]
    Sync,
    /// Each checkpoint is written behind, while the next node runs (one
    /// write in flight at a time): a crash loses at most the last
    /// completed node as well.
    Async,
    /// Checkpoints are kept in memory and written once, when the run ends,
    /// fails or stops to ask: a crash loses the whole run.
    Exit,
}

/// A durable run's part of the run state, shared by its branches.
pub(crate) struct DurableRun {
    pub(crate) run_id: String,
    store: Arc<dyn RunStore>,
    fingerprint: String,
    mode: Durability,
    ttl: Duration,
    /// `None` when the run only replays what was saved (a completed run).
    lease: Mutex<Option<Lease>>,
    replay: Mutex<Replay>,
    /// Serializes writes, so checkpoints go in `seq` order.
    writer: tokio::sync::Mutex<Writer>,
    /// A `ModelCodec<M>` for the run's model type `M`.
    model_codec: Box<dyn Any + Send + Sync>,
    /// The task that keeps the lease alive while a node runs long.
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Default)]
struct Replay {
    nodes: HashMap<String, NodeDone>,
    steps: HashMap<(String, String, u32), Value>,
    answers: HashMap<String, Value>,
    attempts: HashMap<String, (u32, bool)>,
}

struct Writer {
    next_seq: u64,
    /// Records not written yet (`Exit`).
    pending: Vec<Record>,
    /// The write in flight (`Async`).
    in_flight: Option<tokio::task::JoinHandle<Result<(), DurableError>>>,
}

/// What a node running in a durable run can reach of it: the run, its own
/// path, and how many questions and steps it has met so far.
pub(crate) struct NodeJournal {
    pub(crate) run: Arc<DurableRun>,
    pub(crate) path: String,
    interrupts: AtomicU32,
    steps: Mutex<HashMap<String, u32>>,
    /// Questions answered while this node ran, for `hitl_history`.
    pub(crate) answered: Mutex<Vec<HumanInteraction>>,
    /// Context entries the node wrote with `Context::insert_saved`.
    /// Each as encoded, or why it cannot be saved: the node fails then.
    pub(crate) saved_entries: Mutex<Vec<(String, Result<Value, String>)>>,
    /// The model after the node, encoded before the node's change to it
    /// was kept: a model that cannot be saved fails the node and is put back.
    pub(crate) model_after: Mutex<Option<Value>>,
}

impl NodeJournal {
    pub(crate) fn new(run: Arc<DurableRun>, path: String) -> Self {
        NodeJournal {
            run,
            path,
            interrupts: AtomicU32::new(0),
            steps: Mutex::default(),
            answered: Mutex::default(),
            saved_entries: Mutex::default(),
            model_after: Mutex::default(),
        }
    }

    /// The number of the node's next question.
    pub(crate) fn next_interrupt(&self) -> u32 {
        self.interrupts.fetch_add(1, Ordering::Relaxed)
    }

    /// The number of the node's next step named `name`.
    pub(crate) fn next_step(&self, name: &str) -> u32 {
        let mut steps = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
        let n = steps.entry(name.to_owned()).or_insert(0);
        let index = *n;
        *n += 1;
        index
    }
}

pub(crate) struct DurableSetup<M> {
    pub(crate) run_id: String,
    pub(crate) store: Arc<dyn RunStore>,
    pub(crate) fingerprint: String,
    pub(crate) mode: Durability,
    pub(crate) ttl: Duration,
    pub(crate) lease: Option<Lease>,
    pub(crate) journal: Journal,
    pub(crate) codec: ModelCodec<M>,
}

impl DurableRun {
    pub(crate) fn new<M: Send + 'static>(setup: DurableSetup<M>) -> DurableRun {
        let journal = setup.journal;
        DurableRun {
            run_id: setup.run_id,
            store: setup.store,
            fingerprint: setup.fingerprint,
            mode: setup.mode,
            ttl: setup.ttl,
            lease: Mutex::new(setup.lease),
            replay: Mutex::new(Replay {
                nodes: journal.nodes,
                steps: journal.steps,
                answers: journal.answers,
                attempts: journal.attempts,
            }),
            writer: tokio::sync::Mutex::new(Writer {
                next_seq: journal.latest_seq + 1,
                pending: Vec::new(),
                in_flight: None,
            }),
            model_codec: Box::new(setup.codec),
            heartbeat: Mutex::new(None),
        }
    }

    /// Renews the lease every third of its time while the run lasts, so a
    /// node that runs longer than the lease does not lose the run to
    /// another worker; a run whose process died stops renewing, and its
    /// lease runs out.
    pub(crate) fn keep_lease_alive(self: &Arc<Self>) {
        if !self.writes() {
            return;
        }
        let run = Arc::downgrade(self);
        let every = (self.ttl / 3).max(Duration::from_millis(10));
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(run) = run.upgrade() else { return };
                let Ok(lease) = run.current_lease() else {
                    return;
                };
                match run.store.renew(&lease, run.ttl).await {
                    Ok(renewed) => {
                        let mut held = run.lease.lock().unwrap_or_else(PoisonError::into_inner);
                        // Released meanwhile: leave it released.
                        if held.is_some() {
                            *held = Some(renewed);
                        }
                    }
                    // Lost (another worker took the run after a stall): the
                    // next checkpoint fails and says so.
                    Err(err) if err.kind() == &crate::store::StoreErrorKind::StaleLease => return,
                    // Anything else (a busy file, a network blip) is tried
                    // again at the next beat.
                    Err(_) => {}
                }
            }
        });
        *self
            .heartbeat
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(task);
    }

    fn replay(&self) -> std::sync::MutexGuard<'_, Replay> {
        self.replay.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The saved completion of the node at `path`, taken: that node is not run again.
    pub(crate) fn completed(&self, path: &str) -> Option<NodeDone> {
        let mut replay = self.replay();
        if replay.nodes.is_empty() {
            return None;
        }
        replay.nodes.remove(path)
    }

    /// Whether the journal holds a completion of the node at `path` (left
    /// for that node to take).
    pub(crate) fn has_completed(&self, path: &str) -> bool {
        self.replay().nodes.contains_key(path)
    }

    /// The last attempt the retried node at `path` began before this
    /// process, and whether it finished; `(0, false)` if none.
    pub(crate) fn attempts_begun(&self, path: &str) -> (u32, bool) {
        self.replay()
            .attempts
            .get(path)
            .copied()
            .unwrap_or((0, false))
    }

    /// The saved value of a node's step.
    pub(crate) fn step_value(&self, path: &str, name: &str, index: u32) -> Option<Value> {
        self.replay()
            .steps
            .get(&(path.to_owned(), name.to_owned(), index))
            .cloned()
    }

    /// The answer given to the question `id`, if any.
    pub(crate) fn answer(&self, id: &str) -> Option<Value> {
        self.replay().answers.get(id).cloned()
    }

    /// Takes `answers` (question id, answer) as given: the nodes that asked
    /// find them when they run again.
    pub(crate) fn give_answers(&self, answers: &[(String, Value)]) {
        let mut replay = self.replay();
        for (id, value) in answers {
            replay.answers.insert(id.clone(), value.clone());
        }
    }

    /// Withdraws the answer to `id` (it was of the wrong type), here and in the store.
    pub(crate) fn reject(&self, id: &str) {
        self.replay().answers.remove(id);
    }

    /// `model` as JSON, if the run's model is an `M` (a node inside an
    /// `.isolated()` model of another type is not saved with the run's).
    pub(crate) fn encode_model<M: 'static>(&self, model: &M) -> Option<Result<Value, String>> {
        let codec = self.model_codec.downcast_ref::<ModelCodec<M>>()?;
        Some((codec.encode)(model))
    }

    /// A saved model read back as `M`.
    pub(crate) fn decode_model<M: 'static>(&self, value: Value) -> Option<Result<M, String>> {
        let codec = self.model_codec.downcast_ref::<ModelCodec<M>>()?;
        Some((codec.decode)(value))
    }

    /// Saves `records` as the run's next checkpoint, with `status`, as the
    /// run's durability says: now, behind, or at the end.
    pub(crate) async fn append(
        &self,
        records: Vec<Record>,
        status: RunStatus,
    ) -> Result<(), DurableError> {
        let mut writer = self.writer.lock().await;
        match self.mode {
            Durability::Exit if status == RunStatus::Running => {
                writer.pending.extend(records);
                Ok(())
            }
            Durability::Async if status == RunStatus::Running => {
                if let Some(previous) = writer.in_flight.take() {
                    join(previous).await?;
                }
                let checkpoint = self.checkpoint(&mut writer, records, status);
                let store = Arc::clone(&self.store);
                let lease = self.current_lease()?;
                writer.in_flight = Some(tokio::spawn(async move {
                    store
                        .save(checkpoint, &lease)
                        .await
                        .map_err(DurableError::from)
                }));
                Ok(())
            }
            _ => {
                if let Some(previous) = writer.in_flight.take() {
                    join(previous).await?;
                }
                let mut records = records;
                if !writer.pending.is_empty() {
                    let mut all = std::mem::take(&mut writer.pending);
                    all.append(&mut records);
                    records = all;
                }
                let checkpoint = self.checkpoint(&mut writer, records, status);
                let lease = self.current_lease()?;
                self.store.save(checkpoint, &lease).await?;
                self.renew_if_due().await
            }
        }
    }

    fn checkpoint(
        &self,
        writer: &mut Writer,
        records: Vec<Record>,
        status: RunStatus,
    ) -> Checkpoint {
        let seq = writer.next_seq;
        writer.next_seq += 1;
        Checkpoint::new(
            self.run_id.clone(),
            seq,
            status,
            self.fingerprint.clone(),
            state_of(records),
        )
    }

    fn current_lease(&self) -> Result<Lease, DurableError> {
        self.lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                DurableError::Store(crate::store::StoreError::stale_lease(
                    "save",
                    &self.run_id,
                    "a replay of a finished run",
                ))
            })
    }

    /// Extends the lease once half its time is gone, so a long run keeps it.
    async fn renew_if_due(&self) -> Result<(), DurableError> {
        let lease = self.current_lease()?;
        let left = lease
            .expires_at()
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        if left > self.ttl / 2 {
            return Ok(());
        }
        let renewed = self.store.renew(&lease, self.ttl).await?;
        *self.lease.lock().unwrap_or_else(PoisonError::into_inner) = Some(renewed);
        Ok(())
    }

    /// Starts a new run in the store: records it, takes its lease and saves
    /// `records` (the start) as its first checkpoint, in one step; with
    /// `Durability::Exit` the records wait for the end.
    pub(crate) async fn begin(
        self: &Arc<Self>,
        parent_run: Option<&str>,
        holder: &str,
        records: Vec<Record>,
    ) -> Result<(), DurableError> {
        let first = {
            let mut writer = self.writer.lock().await;
            // A run copied from another (`resume_from`) is written at once
            // whatever its durability: it is resumed right after.
            if self.mode == Durability::Exit && parent_run.is_none() {
                writer.pending.extend(records);
                None
            } else {
                Some(self.checkpoint(&mut writer, records, RunStatus::Running))
            }
        };
        let lease = self
            .store
            .begin_run(
                &self.run_id,
                &self.fingerprint,
                parent_run,
                holder,
                self.ttl,
                first,
            )
            .await?;
        *self.lease.lock().unwrap_or_else(PoisonError::into_inner) = Some(lease);
        self.keep_lease_alive();
        Ok(())
    }

    /// Saves how the run ended (`records`, `status`) after any write still
    /// behind, and gives the lease up, in one step.
    pub(crate) async fn end(
        &self,
        records: Vec<Record>,
        status: RunStatus,
    ) -> Result<(), DurableError> {
        self.stop_heartbeat();
        let saved = {
            let mut writer = self.writer.lock().await;
            match writer.in_flight.take() {
                Some(previous) => join(previous).await,
                None => Ok(()),
            }
        };
        // A write behind that failed lost a node's record: no end is written
        // over the gap, so the run stays resumable and that node runs again.
        let saved = match saved {
            Ok(()) => {
                let mut writer = self.writer.lock().await;
                let mut all = std::mem::take(&mut writer.pending);
                all.extend(records);
                let checkpoint = self.checkpoint(&mut writer, all, status);
                drop(writer);
                match self.current_lease() {
                    Ok(lease) => self
                        .store
                        .save_and_release(checkpoint, &lease)
                        .await
                        .map_err(DurableError::from),
                    Err(err) => Err(err),
                }
            }
            Err(err) => Err(err),
        };
        let lease = self
            .lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if saved.is_err()
            && let Some(lease) = lease
        {
            // Given back even so, so the run can be resumed at once.
            let _ = self.store.release(&lease).await;
        }
        saved
    }

    pub(crate) fn stop_heartbeat(&self) {
        if let Some(task) = self
            .heartbeat
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }

    /// Waits for writes behind, and gives the lease up.
    pub(crate) async fn close(&self) -> Result<(), DurableError> {
        self.stop_heartbeat();
        let previous = self.writer.lock().await.in_flight.take();
        let written = match previous {
            Some(previous) => join(previous).await,
            None => Ok(()),
        };
        let lease = self
            .lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(lease) = lease {
            self.store.release(&lease).await?;
        }
        written
    }

    /// Whether this run writes (it is not the replay of a finished run).
    pub(crate) fn writes(&self) -> bool {
        self.lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

async fn join(
    handle: tokio::task::JoinHandle<Result<(), DurableError>>,
) -> Result<(), DurableError> {
    match handle.await {
        Ok(result) => result,
        Err(err) => Err(DurableError::Store(crate::store::StoreError::new(
            "save",
            "",
            format!("the write behind did not finish: {err}"),
        ))),
    }
}

impl Drop for DurableRun {
    fn drop(&mut self) {
        // A run dropped midway (its future cancelled) stops renewing; its
        // lease runs out and another worker can take the run over.
        if let Some(task) = self
            .heartbeat
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}
