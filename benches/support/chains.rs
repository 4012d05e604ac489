//! The chain of trivial nodes that the chain benches, the scale bench, the
//! peer benches and the allocation tests all run: N nodes each adding one,
//! written out by hand (the limit) and as a `pipeline!`, from one list so
//! both run exactly the same nodes.

// Each includer uses the lengths it measures.
#![allow(dead_code)]

use stroma::Runnable;
use stroma::prelude::*;

#[node]
pub async fn inc(x: u64) -> u64 {
    x + 1
}

/// Defines, from one list of nodes, the hand-written chain `$hand` and the
/// pipeline constructor `$pipeline`.
macro_rules! chain {
    ($hand:ident, $pipeline:ident: $($node:ident),+ $(,)?) => {
        pub async fn $hand(x: u64) -> u64 {
            $(let x = $node::call(x).await;)+
            x
        }

        pub fn $pipeline() -> impl Runnable<(), Input = u64, Output = u64> + Sync + 'static {
            pipeline![$($node),+]
        }
    };
}

chain!(hand_1, pipeline_1: inc);

chain!(hand_10, pipeline_10: inc, inc, inc, inc, inc, inc, inc, inc, inc, inc);

chain!(hand_100, pipeline_100:
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
    inc, inc, inc, inc, inc, inc, inc, inc, inc, inc,
);
