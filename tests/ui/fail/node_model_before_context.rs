use stroma::prelude::*;

#[node]
async fn note(text: String, log: &mut Vec<String>, ctx: &Context) -> usize {
    let _ = ctx;
    log.push(text);
    log.len()
}

fn main() {}
