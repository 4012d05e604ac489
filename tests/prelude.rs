//! `use stroma::prelude::*` alone brings every name the reliability,
//! routing, diagram and service work added for a user to write: this file
//! does not compile if one goes missing.

use stroma::prelude::*;

/// Each name in a position a user's code puts it: a signature, a bound, an
/// error it looks into.
#[allow(clippy::too_many_arguments)]
fn names(
    _policy: RetryPolicy,
    _diagram: Diagram,
    _failure: NodeFailure,
    _panic: NodePanic,
    _middleware: MiddlewareError,
    _handler: HandlerPanicked,
    _cap: LoopCapReached,
    _timed_out: TimedOut,
    _cancelled: Cancelled,
    _at_capacity: AtCapacity,
    _exhausted: RetriesExhausted,
    _token: CancellationToken,
    _branches: BranchesFailed,
    _request: RunRequest<u32>,
    _service: StromaService<fn()>,
) {
}

fn generic<P: Runnable<(), Input = u32>>(_: &P) -> Option<RunFuture<'static, P::Output>> {
    None
}

fn streamed<'a>(_: RunStream<'a, u32>) -> Option<RunEvent<u32>> {
    None
}

#[node]
async fn double(n: u32) -> u32 {
    n * 2
}

#[test]
fn the_prelude_holds_the_names_a_user_writes() {
    // Named, so the compiler checks each name resolves; nothing to run.
    let _ = names;
    let _ = streamed;
    assert!(generic(&double).is_none());
}
