//! The library's modules import each other one way only (issue 15): no module below the front
//! door takes the `Client`, and no two modules import each other, directly or around a circle.
//! The same holds between the CLI's command files. Read from the sources (`crate::x` paths in
//! code, comments and test modules aside).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the top-level modules it names, for the `src` folder at `root`.
fn imports(root: &Path, skip: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap();
            let top = relative.iter().next().unwrap().to_string_lossy().trim_end_matches(".rs").to_string();
            if skip.contains(&top.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
            let names = graph.entry(top.clone()).or_default();
            for line in code.lines().map(|l| l.split("//").next().unwrap_or_default()) {
                for (at, _) in line.match_indices("crate::") {
                    let name: String =
                        line[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if name != top && !name.is_empty() {
                        names.insert(name);
                    }
                }
            }
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    graph.values_mut().for_each(|deps| deps.retain(|d| modules.contains(d)));
    graph
}

/// A circle of imports, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_library_imports_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = imports(&root, &["lib"]);
    assert!(graph.len() > 20, "{graph:?}");
    assert_eq!(circle(&graph), None, "an import circle in crates/batchfan");
    let takes_the_client: Vec<&String> =
        graph.iter().filter(|(m, deps)| m.as_str() != "client" && deps.contains("client")).map(|(m, _)| m).collect();
    assert!(takes_the_client.is_empty(), "below the front door, these import the client: {takes_the_client:?}");
}

#[test]
fn the_cli_command_files_do_not_import_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../batchfan-cli/src");
    let graph = imports(&root, &["main"]);
    for (file, deps) in graph.iter().filter(|(f, _)| f.ends_with("_cmd")) {
        let commands: Vec<&String> = deps.iter().filter(|d| d.ends_with("_cmd")).collect();
        assert!(commands.is_empty(), "{file} imports the command files {commands:?}");
    }
    assert_eq!(circle(&graph), None, "an import circle in the CLI");
}

#[test]
fn a_circle_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into();
    assert_eq!(circle(&graph), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}
