use stroma::prelude::*;

enum Ticket {
    Bug(String),
    Spam,
}

#[node]
async fn classify(text: String) -> Ticket {
    let _ = text;
    Ticket::Spam
}

#[node]
async fn reproduce(report: String) -> String {
    report
}

fn main() {
    let _ = route![classify => {
        Ticket::Bug(report) => reproduce,
    }];
}
