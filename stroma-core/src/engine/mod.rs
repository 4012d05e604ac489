//! The engine: the state a run executes against, the one node-execution
//! path and its observers (with a durable run's node: `journaled.rs`), and
//! the guard that puts a model back.

pub(crate) mod failure;
pub(crate) mod guard;
pub(crate) mod journaled;
pub(crate) mod observe;
pub(crate) mod state;

/// Awaits `node` at `slot` on `input` against `cx` under the observer `O`,
/// catching a panic: how the runner, loops and branches run their nodes.
macro_rules! run_caught {
    ($observer:ty, $node:expr, $input:expr, $cx:expr, $slot:expr) => {{
        use ::futures::FutureExt as _;
        ::std::panic::AssertUnwindSafe($node.run::<$observer>($input, $cx, $slot))
            .catch_unwind()
            .await
    }};
}
pub(crate) use run_caught;
