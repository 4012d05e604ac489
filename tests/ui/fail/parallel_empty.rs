use stroma::prelude::*;

fn main() {
    let _ = parallel![];
}
