//! The crate's layers, read from its source: every `crate::…` path a file names is an
//! arrow from its top-level module to another, and no arrow may run up the list of
//! DESIGN.md / STYLE.md (entry → web and worker → service → outbox, db, domain, email →
//! error, types, settings, telemetry), nor form a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A top-level module's floor: a module imports only modules on lower floors.
fn floor(module: &str) -> Option<u8> {
    Some(match module {
        "main" | "lib" => 8,
        "cli" => 7,
        "startup" | "seed" => 6,
        "api" | "pages" => 5,
        "web" | "worker" => 4,
        "service" => 3,
        "outbox" => 2,
        "db" | "email" => 1,
        "domain" | "error" | "types" | "settings" | "telemetry" => 0,
        _ => return None,
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `src/api/cohorts.rs` → `api`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative
        .components()
        .next()
        .expect("a path")
        .as_os_str()
        .to_string_lossy()
        .to_string();
    first.trim_end_matches(".rs").to_string()
}

/// Every top-level module a source text names through `crate::`, including grouped
/// imports (`use crate::{db, error}`), comments left out.
fn modules_named(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut named = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (index, _) in code.match_indices("crate::") {
            let rest = &code[index + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for part in inner.split(',') {
                    let name = ident(part.trim());
                    if !name.is_empty() {
                        named.insert(name);
                    }
                }
            } else {
                let name = ident(rest);
                if !name.is_empty() {
                    named.insert(name);
                }
            }
        }
    }
    // The backend-switching macro is exported at the crate root but belongs to `db`.
    if named.remove("per_backend") {
        named.insert("db".into());
    }
    named
}

fn arrows() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut arrows: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let from = module_of(&src, &file);
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        for to in modules_named(&text) {
            if to != from {
                arrows.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    arrows
}

#[test]
fn no_module_imports_one_above_it() {
    let mut upward = Vec::new();
    for (from, targets) in arrows() {
        let from_floor = floor(&from).unwrap_or_else(|| panic!("module {from} has no floor"));
        for to in targets {
            let to_floor = floor(&to).unwrap_or_else(|| panic!("module {to} has no floor"));
            if to_floor >= from_floor {
                upward.push(format!("{from} → {to}"));
            }
        }
    }
    assert!(upward.is_empty(), "arrows running up: {upward:?}");
}

#[test]
fn api_and_pages_are_mounted_only_by_startup() {
    for (from, targets) in arrows() {
        for to in ["api", "pages"] {
            if targets.contains(to) {
                assert_eq!(from, "startup", "{from} imports {to}");
            }
        }
    }
}

#[test]
fn domain_imports_nothing_of_the_crate() {
    let arrows = arrows();
    let named = arrows.get("domain").cloned().unwrap_or_default();
    assert!(named.is_empty(), "domain imports {named:?}");
}

#[test]
fn the_module_graph_has_no_circle() {
    let arrows = arrows();
    // Repeatedly remove modules that import nothing left; what remains is a circle.
    let mut left: BTreeMap<String, BTreeSet<String>> = arrows.clone();
    loop {
        let sinks: Vec<String> = left
            .iter()
            .filter(|(_, targets)| targets.iter().all(|t| !left.contains_key(t)))
            .map(|(module, _)| module.clone())
            .collect();
        if sinks.is_empty() {
            break;
        }
        for sink in sinks {
            left.remove(&sink);
        }
    }
    assert!(left.is_empty(), "modules in a circle: {:?}", left.keys());
}

#[test]
fn the_reader_sees_grouped_and_inline_paths() {
    let named = modules_named(
        "use crate::{db, error::AppError};\nlet x = crate::service::zone(a); // crate::api\n",
    );
    assert_eq!(
        named.into_iter().collect::<Vec<_>>(),
        vec!["db".to_string(), "error".into(), "service".into()]
    );
}
