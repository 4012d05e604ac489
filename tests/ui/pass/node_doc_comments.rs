#![deny(missing_docs)]
//! Doc comments on a node's fn stay on the node value, so `missing_docs` holds.

use stroma::prelude::*;

/// Doubles its input.
#[node]
pub async fn double(n: u32) -> u32 {
    n * 2
}

fn main() {
    let _ = double;
}
