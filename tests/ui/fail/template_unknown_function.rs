use stroma::prelude::*;

fn main() {
    let _template: Template = template!("x $expr{frobnicate(1)}");
}
