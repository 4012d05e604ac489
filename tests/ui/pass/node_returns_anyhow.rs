use stroma::prelude::*;

// A node may return `anyhow::Result`: `anyhow::Error` is its error type.
#[node]
async fn parse(text: String) -> anyhow::Result<u32> {
    let n: u32 = text.trim().parse()?;
    anyhow::ensure!(n > 0, "zero is not a page count");
    Ok(n)
}

#[node]
async fn double(n: u32) -> Result<u32, anyhow::Error> {
    n.checked_mul(2)
        .ok_or_else(|| anyhow::anyhow!("{n} doubled overflows"))
}

fn assert_node<N: Node<Input = String, Output = u32>>(_: N) {}

fn main() {
    assert_node(pipeline![parse, double]);
    let _ = async {
        let runner = StromaRunner::quick();
        let _ = runner
            .run(&pipeline![parse, double], "21".to_string())
            .await;
    };
}
