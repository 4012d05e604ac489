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

// Not marked `#[node]`.
async fn reproduce(report: String) -> String {
    report
}

#[node]
async fn reject(_nothing: ()) -> String {
    String::new()
}

async fn run() {
    let triage = route![classify => {
        Ticket::Bug(report) => reproduce,
        Ticket::Spam => reject,
    }];
    // Using it raises nothing more.
    let _ = StromaRunner::quick().run(&triage, String::new()).await;
}

fn main() {
    let _ = run();
}
