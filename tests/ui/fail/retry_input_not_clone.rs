use std::time::Duration;

use stroma::prelude::*;

struct Upload {
    bytes: Vec<u8>,
}

#[node]
async fn send(upload: Upload) -> usize {
    upload.bytes.len()
}

fn main() {
    let _ = pipeline![send.retry(RetryPolicy::fixed(Duration::from_millis(10)))];
}
