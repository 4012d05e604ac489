//! The combinators that are nodes of nodes: `parallel!` (its runtime half)
//! and `for_each` run branches; `loop_until` runs iterations.

pub(crate) mod branches;
pub(crate) mod flow;
pub(crate) mod looping;
pub(crate) mod modifiers;
pub(crate) mod phase;
