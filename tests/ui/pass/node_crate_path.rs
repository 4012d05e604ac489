// `crate = path` names where the `stroma` crate is, for code that reaches it another way.
mod runtime {
    pub use ::stroma::*;
}

use stroma::Node;

#[stroma::node(crate = ::stroma)]
async fn plain(n: u32) -> u32 {
    n
}

#[stroma::node(crate = crate::runtime)]
async fn renamed(n: u32) -> u32 {
    n + 1
}

fn assert_node<N: Node<Input = u32, Output = u32>>(_: N) {}

fn main() {
    assert_node(plain);
    assert_node(stroma::pipeline![crate = crate::runtime; plain, renamed]);
}
