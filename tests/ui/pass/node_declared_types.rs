use stroma::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Url {
    url: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Page {
    body: String,
}

#[node(input = Url, output = Page)]
async fn fetch(state: Url) -> Result<Page, NodeError> {
    Ok(Page { body: state.url })
}

#[node(input = Page, output = usize)]
async fn measure(page: Page) -> usize {
    page.body.len()
}

fn assert_node<N: Node<Input = Url, Output = usize>>(_: N) {}

fn main() {
    assert_node(pipeline![fetch, measure]);
}
