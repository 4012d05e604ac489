use stroma::prelude::*;

#[derive(Default)]
struct Tally {
    seen: u32,
}

#[node]
async fn count(n: u32, tally: &mut Tally) -> u32 {
    tally.seen += 1;
    n
}

fn main() {
    let _ = count;
}
