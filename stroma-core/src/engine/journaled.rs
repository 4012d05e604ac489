//! One node of a durable run: replayed if the run saved it, else run and saved.

use std::future::Future;
use std::sync::Arc;

use crate::durable::bounds::LeafCodec;
use crate::durable::context::SavedEntry;
use crate::durable::interrupt::DurableError;
use crate::durable::journal::Record;
use crate::durable::run::NodeJournal;
use crate::engine::failure::NodeFailure;
use crate::engine::state::Cx;
use crate::store::RunStatus;
use crate::tree::kept::Kept;

/// The run state, reachable again once the node's body (which borrowed it
/// for the whole node) has finished.
struct CxPtr<M>(*mut Cx<M>);

// SAFETY: the pointer stands for the `&mut Cx<M>` the node was given, which
// is `Send` when `Cx<M>` is; it is used by one task at a time.
unsafe impl<M: Send> Send for CxPtr<M> {}

pub(crate) async fn journaled_node<'a, M, I, T, K, B, F>(
    cx: &'a mut Cx<M>,
    slot: u32,
    input: I,
    codec: LeafCodec<T>,
    keep: K,
    body: B,
) -> Result<T, NodeFailure>
where
    M: Send + 'static,
    I: Send + 'static,
    T: Send + 'static,
    K: Fn(&T) -> Kept + Send + 'a,
    B: FnOnce(&'a mut Cx<M>, I) -> F + Send + 'a,
    F: Future<Output = Result<T, NodeFailure>> + Send + 'a,
{
    let Some(run) = cx.state_ref().shared().durable.clone() else {
        return body(cx, input).await;
    };
    let path = cx.state_ref().path_now(slot).to_string();
    let loc = cx.state_ref().loc(slot);
    let fail = |err: DurableError| NodeFailure::at(loc, Box::new(err));
    if let Some(done) = run.completed(&path) {
        // Saved before: its output (and the model after it) come back
        // from the journal, and the node does not run.
        let output = (codec.decode)(done.output).map_err(|reason| {
            fail(DurableError::Decode {
                what: format!("the output of `{path}`"),
                reason,
            })
        })?;
        if let Some(model) = done.model
            && let Some(decoded) = run.decode_model::<M>(model)
        {
            *cx.model_mut() = decoded.map_err(|reason| {
                fail(DurableError::Decode {
                    what: format!("the model after `{path}`"),
                    reason,
                })
            })?;
        }
        // Entries it saved in the context come back, to be read with `get_saved`.
        for (name, value) in done.context {
            cx.context().insert_named(name, SavedEntry(value));
        }
        let state = cx.state();
        let outcome = Ok(output);
        if state.keeps() {
            // In the tree as completed, its output kept for later look-ups.
            let started = state
                .start_node(slot, true)
                .unwrap_or_else(std::time::Instant::now);
            state.end_node(slot, started, &outcome, keep);
        }
        return outcome.map_err(|never: crate::error::BoxError| NodeFailure::at(loc, never));
    }

    if !run.writes() {
        // Replaying a completed run runs nothing: a node missing from its
        // journal means the pipeline's logic changed.
        return Err(fail(DurableError::NotInJournal { path }));
    }
    let journal = Arc::new(NodeJournal::new(Arc::clone(&run), path.clone()));
    let cx = CxPtr(cx as *mut Cx<M>);
    // SAFETY: `cx` came from a `&'a mut Cx<M>` this function owns. The body
    // gets it back whole, and its future (the only user) is finished and
    // dropped before the pointer is used again below; the output borrows
    // nothing from it (`T: 'static`). The one caller is the body `#[node]`
    // generates, which keeps `cx` nowhere but in that future. (If the body's
    // future is dropped midway, the pointer is never used again.)
    let outer = unsafe { &mut *cx.0 }
        .state()
        .durable_node
        .replace(Arc::clone(&journal));
    let result = body(unsafe { &mut *cx.0 }, input).await;
    // SAFETY: as above; the body's future is gone.
    let cx = unsafe { &mut *cx.0 };
    cx.state().durable_node = outer;
    let output = match result {
        Ok(output) => output,
        Err(failure) => return Err(failure),
    };
    let answered = std::mem::take(
        &mut *journal
            .answered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let model_changed = !answered.is_empty()
        && crate::model::pipeline_context::record_interactions(cx.model_mut(), answered);
    let output_json = (codec.encode)(&output).map_err(|reason| {
        fail(DurableError::Encode {
            what: format!("the output of `{path}`"),
            reason,
        })
    })?;
    // Encoded already, before the node's change was kept, unless answers
    // changed the model since.
    let encoded = journal
        .model_after
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
        .filter(|_| !model_changed);
    let model = if let Some(encoded) = encoded {
        Some(encoded)
    } else if codec.changes_model || model_changed {
        match run.encode_model(cx.model()) {
            Some(Ok(model)) => Some(model),
            Some(Err(reason)) => {
                return Err(fail(DurableError::Encode {
                    what: format!("the model after `{path}`"),
                    reason,
                }));
            }
            None => None,
        }
    } else {
        None
    };
    let context = std::mem::take(
        &mut *journal
            .saved_entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_iter()
    .map(|(name, json)| match json {
        Ok(json) => Ok((name, json)),
        Err(reason) => Err(fail(DurableError::Encode {
            what: format!("the context entry `{name}` of `{path}`"),
            reason,
        })),
    })
    .collect::<Result<Vec<_>, _>>()?;
    run.append(
        vec![Record::Node {
            path,
            output: output_json,
            model,
            context,
        }],
        RunStatus::Running,
    )
    .await
    .map_err(fail)?;
    Ok(output)
}
