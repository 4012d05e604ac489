//! Typed routing: a support desk triages each ticket, and what the
//! classifier found picks the pipeline that handles it. The route's
//! diagram is printed as Mermaid; each run's path through it is checked.
//!
//! `cargo run --example routing`

use stroma::prelude::*;

/// What the classifier makes of a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Ticket {
    Bug(BugReport),
    Feature { title: String, votes: u32 },
    Spam,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BugReport {
    summary: String,
    severity: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Answer {
    queue: &'static str,
    text: String,
}

#[node]
async fn classify(text: String) -> Ticket {
    let lower = text.to_lowercase();
    if lower.contains("crash") || lower.contains("error") {
        let severity = if lower.contains("data loss") { 1 } else { 3 };
        Ticket::Bug(BugReport {
            summary: text,
            severity,
        })
    } else if let Some(title) = lower.strip_prefix("please add ") {
        Ticket::Feature {
            title: title.to_owned(),
            votes: 1,
        }
    } else {
        Ticket::Spam
    }
}

/// Writes reproduction steps for a bug.
#[node]
async fn reproduce(report: BugReport) -> BugReport {
    BugReport {
        summary: format!("{} (reproduced)", report.summary),
        ..report
    }
}

/// Files the reproduced bug in the queue its severity calls for.
#[node]
async fn file_bug(report: BugReport) -> Answer {
    let queue = if report.severity == 1 {
        "urgent"
    } else {
        "bugs"
    };
    Answer {
        queue,
        text: report.summary,
    }
}

#[node]
async fn plan(request: (String, u32)) -> Answer {
    let (title, votes) = request;
    Answer {
        queue: "roadmap",
        text: format!("{title} ({votes} vote)"),
    }
}

#[node]
async fn reject(_nothing: ()) -> Answer {
    Answer {
        queue: "none",
        text: "closed as spam".into(),
    }
}

fn desk() -> impl Runnable<(), Input = String, Output = Answer> {
    route![classify => {
        Ticket::Bug(report) => pipeline![reproduce, file_bug],
        Ticket::Feature { title, votes } => plan,
        Ticket::Spam => reject,
    }]
    .named("triage")
}

#[tokio::main]
async fn main() -> Result<(), RunError> {
    println!("{}", desk().diagram().mermaid());

    let runner = StromaRunner::quick();
    let tickets = [
        (
            "App crash with data loss on save",
            "urgent",
            "triage.file_bug",
        ),
        ("Please add dark mode", "roadmap", "triage.plan"),
        ("Cheap watches!!!", "none", "triage.reject"),
    ];
    for (text, queue, last) in tickets {
        let done = runner.run(&desk(), text.to_owned()).await?;
        let answer = &done.final_state;
        println!("{text:?} -> {} queue: {}", answer.queue, answer.text);
        assert_eq!(answer.queue, queue);
        // The arm taken ran; the others show as skipped.
        assert_eq!(done.scope(last).unwrap().status, NodeStatus::Completed);
        let skipped = done
            .records()
            .iter()
            .filter(|r| r.status == NodeStatus::Skipped)
            .count();
        assert_eq!(skipped, 0, "records list only the nodes that ran");
        let ran: Vec<&str> = done.records().iter().map(|r| r.path.as_str()).collect();
        assert_eq!(ran.first(), Some(&"triage.classify"));
        assert_eq!(ran.last(), Some(&last));
    }
    Ok(())
}
