//! The workspace stays publishable: every crate has the metadata a registry
//! page needs and a README that exists, and no package takes a name that is
//! another project's on the registry (`stroma`, `stroma-core`), while the
//! libraries keep the names code uses (`stroma`, `stroma_core`).
//! (`cargo package --workspace` in `.ci/run` builds what would be uploaded.)

use std::fs;
use std::path::Path;

const CRATES: [&str; 4] = [".", "stroma-core", "stroma-macros", "stroma-template"];

const FIELDS: [&str; 8] = [
    "description",
    "license",
    "repository",
    "homepage",
    "readme",
    "keywords",
    "categories",
    "documentation",
];

/// The `[package]` table of a manifest, as text.
fn package_table(manifest: &str) -> &str {
    let start = manifest.find("[package]").expect("a [package] table");
    let rest = &manifest[start + "[package]".len()..];
    rest.find("\n[").map_or(rest, |end| &rest[..end])
}

fn value<'t>(table: &'t str, key: &str) -> Option<&'t str> {
    table.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key || k.trim() == format!("{key}.workspace")).then(|| v.trim())
    })
}

#[test]
fn every_crate_has_what_a_registry_page_needs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for krate in CRATES {
        let dir = root.join(krate);
        let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let package = package_table(&manifest);
        for field in FIELDS {
            let value = value(package, field)
                .unwrap_or_else(|| panic!("{krate}: no `{field}` in [package]"));
            if value == "true" {
                // `field.workspace = true`: the workspace must give it.
                assert!(
                    workspace
                        .lines()
                        .any(|l| l.trim_start().starts_with(&format!("{field} ="))),
                    "{krate}: `{field}` comes from the workspace, which has none"
                );
            }
        }
        let readme = value(package, "readme").unwrap().trim_matches('"');
        assert!(dir.join(readme).is_file(), "{krate}: no {readme}");
        let name = value(package, "name").unwrap().trim_matches('"');
        assert!(
            !["stroma", "stroma-core"].contains(&name),
            "{krate}: `{name}` is another project's name on the registry"
        );
    }
}

#[test]
fn the_libraries_keep_the_names_code_uses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (krate, lib) in [(".", "stroma"), ("stroma-core", "stroma_core")] {
        let manifest = fs::read_to_string(root.join(krate).join("Cargo.toml")).unwrap();
        let lib_table = manifest
            .split("[lib]")
            .nth(1)
            .unwrap_or_else(|| panic!("{krate}: no [lib] table"));
        assert_eq!(
            value(lib_table, "name").map(|v| v.trim_matches('"')),
            Some(lib),
            "{krate}"
        );
    }
}
