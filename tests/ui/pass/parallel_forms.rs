use stroma::prelude::*;

#[node]
async fn double(n: u32) -> u32 {
    n * 2
}

#[node]
async fn describe(n: u32) -> String {
    format!("#{n}")
}

#[node]
async fn add((a, b): (u32, String)) -> String {
    format!("{a}{b}")
}

fn assert_node<N: Node<Input = u32, Output = String>>(_: &N) {}

fn main() {
    // One branch, a trailing comma, a pipeline as a branch, a parallel inside a pipeline.
    let _single = parallel![double,];
    let both = pipeline![parallel![pipeline![double, double], describe], add];
    assert_node(&both);
    let _list = for_each(double).concurrency(4);
}
