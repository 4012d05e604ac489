use stroma::prelude::*;

fn main() {
    let _template: Template = template!("a $expr{1 +");
}
