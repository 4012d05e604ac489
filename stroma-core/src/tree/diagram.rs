//! [`Diagram`]: a pipeline's shape drawn as a flowchart, in Mermaid or
//! Graphviz DOT, and, for a run, coloured by each node's status.
//!
//! Leaves are boxes; named pipelines, flows, phases, loops, `parallel!`,
//! `for_each` and `route!` are groups (subgraphs, clusters) around their
//! nodes. Edges follow the order nodes run in: a loop has its back edge, a
//! `parallel!` fans out to its branches and in again, a route's arms leave
//! its classifying node labelled with their patterns. What wraps a node
//! (`retry`, `timeout`, `isolated`, `snapshot`) is a note in its box.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use super::record::NodeStatus;
use super::scope::ScopeKind;
use super::shape::Shape;

/// A pipeline's diagram; see [`NodeExt::diagram`](crate::NodeExt::diagram)
/// and [`RunResult::diagram`](crate::RunResult::diagram).
///
/// ```
/// use stroma::prelude::*;
///
/// #[node]
/// async fn fetch(url: String) -> String { url }
/// #[node]
/// async fn parse(page: String) -> usize { page.len() }
///
/// let text = pipeline![fetch, parse].diagram().mermaid();
/// assert!(text.starts_with("flowchart TD\n"));
/// assert!(text.contains("n0 --> n1"));
/// ```
#[derive(Clone)]
pub struct Diagram {
    shape: Arc<Shape>,
    /// Per slot, the status it had in a run, if the diagram is of one.
    statuses: Option<Vec<NodeStatus>>,
}

impl fmt::Debug for Diagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.mermaid())
    }
}

/// Mermaid text, as [`Diagram::mermaid`] gives it.
impl fmt::Display for Diagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.mermaid())
    }
}

/// One edge: from a node to a node, with a label (a route's pattern) and
/// whether it goes back (a loop's next iteration).
struct Edge {
    from: u32,
    to: u32,
    label: Option<String>,
    back: bool,
}

impl Diagram {
    pub(crate) fn of(shape: Arc<Shape>) -> Self {
        Diagram {
            shape,
            statuses: None,
        }
    }

    /// The diagram of a run: `statuses` has one per slot of `shape`.
    pub(crate) fn of_run(shape: Arc<Shape>, statuses: Vec<NodeStatus>) -> Self {
        Diagram {
            shape,
            statuses: Some(statuses),
        }
    }

    /// The diagram as a Mermaid flowchart (top to bottom), which code
    /// hosts render from a `mermaid` code block.
    pub fn mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n");
        for root in &self.shape.roots {
            self.mermaid_slot(*root, 1, &mut out);
        }
        for edge in self.edges() {
            let arrow = if edge.back { "-.->" } else { "-->" };
            let _ = match &edge.label {
                Some(label) => writeln!(
                    out,
                    "  n{} {arrow}|\"{}\"| n{}",
                    edge.from,
                    mermaid_escape(label),
                    edge.to
                ),
                None => writeln!(out, "  n{} {arrow} n{}", edge.from, edge.to),
            };
        }
        if let Some(statuses) = &self.statuses {
            for (class, status) in STATUS_CLASSES {
                let leaves: Vec<String> = self
                    .leaves()
                    .filter(|slot| statuses.get(*slot as usize) == Some(status))
                    .map(|slot| format!("n{slot}"))
                    .collect();
                if leaves.is_empty() {
                    continue;
                }
                let (fill, stroke) = colours(*status);
                let _ = writeln!(out, "  classDef {class} fill:{fill},stroke:{stroke}");
                let _ = writeln!(out, "  class {} {class}", leaves.join(","));
            }
        }
        out
    }

    /// The diagram in Graphviz DOT (`dot -Tsvg`).
    pub fn dot(&self) -> String {
        let mut out = String::from(
            "digraph pipeline {\n  rankdir=TB;\n  node [shape=box, style=rounded, fontname=\"sans-serif\"];\n",
        );
        for root in &self.shape.roots {
            self.dot_slot(*root, 1, &mut out);
        }
        for edge in self.edges() {
            let mut attributes = Vec::new();
            if let Some(label) = &edge.label {
                attributes.push(format!("label=\"{}\"", dot_escape(label)));
            }
            if edge.back {
                attributes.push("style=dashed".to_owned());
            }
            let _ = if attributes.is_empty() {
                writeln!(out, "  n{} -> n{};", edge.from, edge.to)
            } else {
                writeln!(
                    out,
                    "  n{} -> n{} [{}];",
                    edge.from,
                    edge.to,
                    attributes.join(", ")
                )
            };
        }
        out.push_str("}\n");
        out
    }

    fn leaves(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.shape.slots.len() as u32)
            .filter(|slot| self.shape.slots[*slot as usize].kind == ScopeKind::Node)
    }

    /// A node's box text, or a group's title: its id, its kind for a
    /// group, and its notes.
    fn text(&self, slot: u32) -> Vec<String> {
        let shape = &self.shape.slots[slot as usize];
        let mut lines = vec![match shape.kind {
            ScopeKind::Node => shape.key.clone(),
            ScopeKind::ForEach => format!("{} (for each item)", shape.key),
            kind => format!("{} ({kind})", shape.key),
        }];
        lines.extend(shape.notes.iter().cloned());
        lines
    }

    fn mermaid_slot(&self, slot: u32, depth: usize, out: &mut String) {
        let shape = &self.shape.slots[slot as usize];
        let indent = "  ".repeat(depth);
        let text = self
            .text(slot)
            .iter()
            .map(|line| mermaid_escape(line))
            .collect::<Vec<_>>()
            .join("<br/>");
        if shape.kind == ScopeKind::Node {
            let _ = writeln!(out, "{indent}n{slot}[\"{text}\"]");
            return;
        }
        let _ = writeln!(out, "{indent}subgraph s{slot}[\"{text}\"]");
        for child in shape.children.iter().chain(shape.branches.iter().flatten()) {
            self.mermaid_slot(*child, depth + 1, out);
        }
        let _ = writeln!(out, "{indent}end");
    }

    fn dot_slot(&self, slot: u32, depth: usize, out: &mut String) {
        let shape = &self.shape.slots[slot as usize];
        let indent = "  ".repeat(depth);
        let text = self
            .text(slot)
            .iter()
            .map(|line| dot_escape(line))
            .collect::<Vec<_>>()
            .join("\\n");
        if shape.kind == ScopeKind::Node {
            let colour = self
                .statuses
                .as_ref()
                .and_then(|statuses| statuses.get(slot as usize))
                .map(|status| {
                    let (fill, stroke) = colours(*status);
                    format!(", style=\"rounded,filled\", fillcolor=\"{fill}\", color=\"{stroke}\"")
                })
                .unwrap_or_default();
            let _ = writeln!(out, "{indent}n{slot} [label=\"{text}\"{colour}];");
            return;
        }
        let _ = writeln!(out, "{indent}subgraph cluster_s{slot} {{");
        let _ = writeln!(out, "{indent}  label=\"{text}\";");
        for child in shape.children.iter().chain(shape.branches.iter().flatten()) {
            self.dot_slot(*child, depth + 1, out);
        }
        let _ = writeln!(out, "{indent}}}");
    }

    /// Every edge, in the order nodes are met.
    fn edges(&self) -> Vec<Edge> {
        let mut edges = Vec::new();
        self.sequence(&self.shape.roots, &mut edges);
        edges
    }

    /// Chains `slots` in turn: the nodes each ends at lead to those the
    /// next starts at. Gives the nodes the whole starts and ends at.
    fn sequence(&self, slots: &[u32], edges: &mut Vec<Edge>) -> (Vec<u32>, Vec<u32>) {
        let mut entries: Option<Vec<u32>> = None;
        let mut exits: Vec<u32> = Vec::new();
        for slot in slots {
            // The edges inside the part come after the edges into it, so
            // the text reads top to bottom.
            let mut inside = Vec::new();
            let (starts, ends) = self.part(*slot, &mut inside);
            if starts.is_empty() && ends.is_empty() {
                continue;
            }
            for from in &exits {
                for to in &starts {
                    edges.push(Edge {
                        from: *from,
                        to: *to,
                        label: None,
                        back: false,
                    });
                }
            }
            edges.append(&mut inside);
            entries.get_or_insert(starts);
            exits = ends;
        }
        (entries.unwrap_or_default(), exits)
    }

    /// The nodes `slot` starts and ends at, with the edges inside it.
    fn part(&self, slot: u32, edges: &mut Vec<Edge>) -> (Vec<u32>, Vec<u32>) {
        let shape = &self.shape.slots[slot as usize];
        match shape.kind {
            ScopeKind::Node => (vec![slot], vec![slot]),
            ScopeKind::Parallel => {
                let (mut starts, mut ends) = (Vec::new(), Vec::new());
                for branch in &shape.branches {
                    let (s, e) = self.sequence(branch, edges);
                    starts.extend(s);
                    ends.extend(e);
                }
                (starts, ends)
            }
            ScopeKind::Loop => {
                let (starts, ends) = self.sequence(&shape.children, edges);
                for from in &ends {
                    for to in &starts {
                        edges.push(Edge {
                            from: *from,
                            to: *to,
                            label: Some("again".to_owned()),
                            back: true,
                        });
                    }
                }
                (starts, ends)
            }
            ScopeKind::Route => {
                let in_arms: Vec<u32> = shape.arms.iter().flat_map(|(_, s)| s.clone()).collect();
                let classify: Vec<u32> = shape
                    .children
                    .iter()
                    .copied()
                    .filter(|child| !in_arms.contains(child))
                    .collect();
                let (starts, decided) = self.sequence(&classify, edges);
                let mut ends = Vec::new();
                for (label, arm) in &shape.arms {
                    let mut inside = Vec::new();
                    let (arm_starts, arm_ends) = self.sequence(arm, &mut inside);
                    for from in &decided {
                        for to in &arm_starts {
                            edges.push(Edge {
                                from: *from,
                                to: *to,
                                label: Some((*label).to_owned()),
                                back: false,
                            });
                        }
                    }
                    edges.append(&mut inside);
                    ends.extend(arm_ends);
                }
                (starts, ends)
            }
            _ => self.sequence(&shape.children, edges),
        }
    }
}

/// The Mermaid classes of a run's statuses, in the order they are drawn.
const STATUS_CLASSES: &[(&str, NodeStatus)] = &[
    ("completed", NodeStatus::Completed),
    ("failed", NodeStatus::Failed),
    ("cancelled", NodeStatus::Cancelled),
    ("skipped", NodeStatus::Skipped),
];

/// Fill and stroke for a status.
fn colours(status: NodeStatus) -> (&'static str, &'static str) {
    match status {
        NodeStatus::Completed => ("#d3f9d8", "#2b8a3e"),
        NodeStatus::Failed => ("#ffe3e3", "#c92a2a"),
        NodeStatus::Cancelled => ("#fff3bf", "#e67700"),
        _ => ("#f1f3f5", "#868e96"),
    }
}

fn mermaid_escape(text: &str) -> String {
    text.replace('"', "#quot;")
}

fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
