use stroma::prelude::*;

struct Greeting(&'static str);

#[node]
async fn greet(name: String, ctx: &Context) -> Result<String, NodeError> {
    let greeting = ctx.require::<Greeting>()?;
    Ok(format!("{}, {name}!", greeting.0))
}

fn assert_node<N: Node<Input = String, Output = String>>(_: N) {}

fn main() {
    assert_node(greet);
    let _ = Greeting("Hello").0;
}
