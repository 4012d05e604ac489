//! Scopes, variables, results and templates: a flow with a task
//! specification analyses a real folder, "generates code" from a prompt
//! rendered out of the task and the analysis, and applies the generated file
//! operations, read back as a structured value, to that folder.
//!
//! Run with `cargo run --example hierarchical_context`. It asserts what it
//! prints and the files it wrote, and removes its folder at the end.

use std::error::Error;
use std::path::{Path, PathBuf};

use serde_json::json;
use stroma::prelude::*;

/// Where the run works: a folder the example makes and removes.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Workspace {
    root: PathBuf,
}

/// What the folder analysis found.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RepoAnalysis {
    files: Vec<String>,
    lines: usize,
}

/// What the code generator produced: its prompt, and what to do to the folder.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Generated {
    prompt: String,
    file_operations: Vec<FileOperation>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct FileOperation {
    action: String,
    path: String,
    content: String,
}

/// Reads the folder: every file's name and the lines they hold.
#[node]
async fn dynamic_repo_analysis(workspace: Workspace) -> Result<RepoAnalysis, NodeError> {
    let mut files = Vec::new();
    let mut lines = 0;
    for entry in std::fs::read_dir(&workspace.root)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            lines += std::fs::read_to_string(entry.path())?.lines().count();
            files.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    files.sort();
    Ok(RepoAnalysis { files, lines })
}

/// Builds its prompt from the task and the analysis, with templates, and
/// "generates" one new file per existing one (a stand-in for a model call).
#[node]
async fn code_generator(analysis: RepoAnalysis, ctx: &Context) -> Result<Generated, NodeError> {
    let prompt = ctx.render(template!(
        "Task $expr{task_spec.task_id}: $expr{task_spec.description}\n\
         Files: $expr{join($hier{dynamic_repo_analysis}.files, \", \")} \
         ($expr{$hier{dynamic_repo_analysis}.lines} lines)"
    ))?;
    let file_operations = analysis
        .files
        .iter()
        .map(|file| FileOperation {
            action: "create".into(),
            path: format!("{}.test", file.trim_end_matches(".rs")),
            content: format!("// tests for {file}\n"),
        })
        .collect();
    Ok(Generated {
        prompt,
        file_operations,
    })
}

/// Applies the operations the generator gave, read back as a structured
/// value from its kept output: the seed's object template.
#[node]
async fn apply_operations(_: Generated, ctx: &Context) -> Result<Vec<String>, NodeError> {
    let operations = ctx.evaluate("$expr{$hier{code_generator}.file_operations}")?;
    let operations: Vec<FileOperation> = serde_json::from_value(operations)?;
    let root = &ctx.var::<Workspace>("workspace")?.root;
    let mut written = Vec::new();
    for operation in operations {
        if operation.action == "create" {
            std::fs::write(root.join(&operation.path), &operation.content)?;
            written.push(operation.path);
        }
    }
    Ok(written)
}

fn make_workspace() -> std::io::Result<Workspace> {
    let root = std::env::temp_dir().join(format!(
        "stroma-hierarchical-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("lib.rs"), "pub fn one() {}\npub fn two() {}\n")?;
    std::fs::write(root.join("main.rs"), "fn main() {}\n")?;
    Ok(Workspace { root })
}

fn read_dir_names(root: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(root)?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    Ok(names)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let workspace = make_workspace()?;
    let implementation = flow(
        "implementation",
        pipeline![dynamic_repo_analysis, code_generator, apply_operations],
    )
    .var(
        "task_spec",
        json!({"task_id": "T-42", "description": "add a test file beside each source file"}),
    )
    .var("workspace", workspace.clone());

    let result = StromaRunner::quick()
        .run(&implementation, workspace.clone())
        .await;
    // The folder goes whatever happened.
    let names = read_dir_names(&workspace.root);
    std::fs::remove_dir_all(&workspace.root)?;
    let result = result?;

    println!("run tree:");
    for scope in result.tree().walk().skip(1) {
        println!("  {:<40} {:?} {:?}", scope.path, scope.kind, scope.status);
    }
    let generated = result.result::<Generated>("implementation.code_generator")?;
    println!("prompt:\n{}", generated.prompt);
    println!("written: {:?}", result.final_state);

    assert_eq!(
        generated.prompt,
        "Task T-42: add a test file beside each source file\n\
         Files: lib.rs, main.rs (3 lines)"
    );
    assert_eq!(result.final_state, ["lib.test", "main.test"]);
    assert_eq!(
        names?,
        ["lib.rs", "lib.test", "main.rs", "main.test"],
        "the operations were applied to the folder"
    );
    let analysis = result.result::<RepoAnalysis>("implementation.dynamic_repo_analysis")?;
    assert_eq!(analysis.lines, 3);
    println!("ok");
    Ok(())
}
