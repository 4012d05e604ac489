use stroma::prelude::*;

#[derive(Clone, Default)]
struct Log {
    lines: Vec<String>,
}

#[node]
async fn note(text: String, ctx: &Context, log: &mut Log) -> Result<usize, NodeError> {
    let prefix = ctx.get_named::<String>("prefix")?;
    log.lines.push(format!("{prefix}{text}"));
    Ok(log.lines.len())
}

fn assert_node<N: Node<Input = String, Output = usize>>(_: N) {}

fn main() {
    assert_node(note);
}
