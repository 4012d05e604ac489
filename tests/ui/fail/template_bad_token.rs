use stroma::prelude::*;

fn main() {
    let _template: Template = template!("x $expr{1 @ 2}");
}
