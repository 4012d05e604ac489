use stroma::prelude::*;

#[node]
async fn count<'a>(n: u32, seen: &'a mut u32) -> u32 {
    *seen += 1;
    n
}

fn main() {}
